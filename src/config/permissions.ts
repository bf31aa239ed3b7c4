/**
 * Boot-time check that the process was granted network access to every
 * configured upstream, so a missing `--allow-net` entry fails at start with one
 * clear message instead of at the first request.
 *
 * @module
 */

/**
 * Return the `host:port` entries that are not granted.
 *
 * @param hosts entries as `--allow-net` spells them
 */
export async function missingNetPermissions(hosts: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const host of hosts) {
    const status = await Deno.permissions.query({ name: "net", host });
    if (status.state !== "granted") missing.push(host);
  }
  return missing;
}
