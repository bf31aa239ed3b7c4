/**
 * Output for the command-line scripts (the lint rules keep `console` to `src/obs`).
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Write `text` and a newline to a stream, completely.
 *
 * @param stream `Deno.stdout` or `Deno.stderr`
 * @param text the line(s), without the final newline
 */
export async function writeLine(
  stream: { write(p: Uint8Array): Promise<number> },
  text: string,
): Promise<void> {
  const bytes = encoder.encode(`${text}\n`);
  let written = 0;
  while (written < bytes.length) written += await stream.write(bytes.subarray(written));
}

/**
 * Write `text` and a newline synchronously, so that progress lines from
 * concurrent work never interleave.
 *
 * @param stream `Deno.stdout` or `Deno.stderr`
 * @param text the line(s), without the final newline
 */
export function writeLineSync(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(`${text}\n`);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}
