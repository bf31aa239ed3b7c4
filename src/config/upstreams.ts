import type { Config } from "./schema.ts";

/**
 * Every `host:port` the service connects to, derived from config alone:
 * outbound URLs never come from requests. `deno task start` grants exactly
 * these plus the listen address, and `main.ts` checks them at boot.
 *
 * Deno's `--allow-net` compares names, not resolved addresses, so these flags
 * are not an SSRF defence: a granted name that resolves to an internal address
 * is still reachable. The defence is that no request can choose a URL.
 *
 * @param config the loaded config
 * @returns `host:port` entries, without duplicates
 */
export function upstreamHosts(config: Config): string[] {
  const hosts: string[] = [];
  if (config.db.kind === "postgres") hosts.push(hostPort(config.db.url, 5432));
  const chain = config.chain.backend;
  if (chain !== null) hosts.push(hostPort(chain.url, chain.url.startsWith("https:") ? 443 : 80));
  if (config.hsm !== null) hosts.push(hostPort(config.hsm.url, 443));
  const ln = config.lightning.backend;
  if (ln !== null) hosts.push(hostPort(ln.url, ln.url.startsWith("https:") ? 443 : 80));
  return [...new Set(hosts)];
}

/** The `host:port` the server listens on, as `--allow-net` spells it. */
export function listenHost(config: Config): string {
  const h = config.server.host;
  const host = h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
  return `${host}:${config.server.port}`;
}

/** `host:port` of a URL, with `defaultPort` when the URL names none. */
export function hostPort(url: string, defaultPort: number): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port === "" ? defaultPort : u.port}`;
}
