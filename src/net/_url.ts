/**
 * Outbound URLs come only from config: a call supplies a path, which must stay
 * under the configured base URL. These checks are the guard against a request
 * value (an address, a txid) smuggling in another origin or path.
 *
 * @module
 */

/** A validated base URL, split for cheap per-call concatenation. */
export interface UpstreamBase {
  /** `scheme://host[:port]`. */
  origin: string;
  /** The base path without a trailing slash; "" for the root. */
  basePath: string;
  /** `Basic …` built from userinfo in the configured URL, which is then dropped from it. */
  authorization?: string;
}

/** Characters never valid in a path we build: whitespace, controls, backslash, fragment. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE_CHARS = /[\s\\#\u0000-\u001f\u007f]/;
/** Encoded separators: some servers decode them and would see extra segments. */
const ENCODED_SEPARATOR = /%2f|%5c/i;

/**
 * Validate the configured base URL. Credentials in it (`http://user:pass@host`,
 * as Bitcoin Core RPC URLs often carry) become a Basic `Authorization` value,
 * so the URL itself never holds them.
 *
 * @param name upstream name, for error messages
 * @param baseUrl the configured URL
 * @throws {TypeError} not an http(s) URL, or it has a query or fragment
 */
export function resolveBase(name: string, baseUrl: string): UpstreamBase {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    // The parser's message repeats the input, which may hold credentials.
    throw new TypeError(`${name}: baseUrl is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`${name}: baseUrl must use http or https, got "${url.protocol}"`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError(`${name}: baseUrl must not have a query or fragment`);
  }
  const base: UpstreamBase = { origin: url.origin, basePath: url.pathname.replace(/\/+$/, "") };
  if (url.username !== "" || url.password !== "") {
    const userinfo = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    base.authorization = `Basic ${base64(new TextEncoder().encode(userinfo))}`;
  }
  return base;
}

/**
 * Join a call's path onto the base, refusing anything that could leave it.
 *
 * @param base the validated base
 * @param path e.g. `/tx/<txid>/status?x=1`; must start with one `/`
 * @param label `<upstream> <METHOD> <route>` for the error message (never the path itself)
 * @returns the absolute URL
 * @throws {TypeError} the path is absolute, protocol-relative, has dot segments,
 *   encoded separators, whitespace, control characters or a fragment
 */
export function resolvePath(base: UpstreamBase, path: string, label: string): string {
  if (
    typeof path !== "string" || path[0] !== "/" || path[1] === "/" || UNSAFE_CHARS.test(path)
  ) {
    throw new TypeError(`${label}: path must be relative to the base URL and start with "/"`);
  }
  const q = path.indexOf("?");
  const pathPart = q < 0 ? path : path.slice(0, q);
  if (ENCODED_SEPARATOR.test(pathPart)) {
    throw new TypeError(`${label}: path must not contain encoded "/" or "\\"`);
  }
  for (const segment of pathPart.split("/")) {
    // URL parsers treat "%2e" as "." in dot segments, so check the decoded form.
    const s = segment.length <= 6 ? segment.replace(/%2e/gi, ".") : segment;
    if (s === "." || s === "..") {
      throw new TypeError(`${label}: path must not contain dot segments`);
    }
  }
  const url = base.origin + base.basePath + path;
  // Belt and braces: the checks above already pin origin and base path.
  const parsed = new URL(url);
  if (parsed.origin !== base.origin || !parsed.pathname.startsWith(`${base.basePath}/`)) {
    throw new TypeError(`${label}: path leaves the base URL`);
  }
  return url;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
