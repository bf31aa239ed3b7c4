/**
 * Command-line arguments for the scripts: one error for bad ones, and the
 * strict option parser every script uses.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Bad command-line arguments; the message is shown with the usage text. */
export class UsageError extends Error {
  /**
   * Describe bad arguments.
   *
   * @param message what is wrong with them
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parse options only (no positionals), refusing unknown ones: a typo must not
 * be silently ignored by a script that creates keys or rotates them.
 *
 * @param args command-line arguments
 * @param options the accepted options
 * @returns the parsed option values
 * @throws UsageError on an unknown, malformed or positional argument
 */
export function parseOptions<const O extends NonNullable<ParseArgsConfig["options"]>>(
  args: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>["values"] {
  try {
    return parseArgs({ args: [...args], strict: true, allowPositionals: false, options }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}
