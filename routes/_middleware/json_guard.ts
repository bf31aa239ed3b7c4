/**
 * Screens JSON request bodies before any validator parses them: nesting is
 * bounded (a deep body would otherwise exhaust the parser's stack and surface
 * as a 500), the text must parse, and every string and key must be
 * well-formed Unicode (a lone surrogate cannot be stored or signed, and would
 * fail deep inside the database driver).
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../_env.ts";
import { ValidationError } from "../../src/errors/mod.ts";

/** Deepest nesting of arrays and objects accepted in a request body. */
export const MAX_JSON_DEPTH = 64;

/** Reject malformed, too deep or ill-formed-Unicode JSON bodies with 400. */
export const jsonGuard = createMiddleware<AppEnv>(async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (c.req.raw.body !== null && /^application\/([a-z0-9.+-]+\+)?json\b/i.test(type)) {
    checkJson(await c.req.raw.clone().text());
  }
  await next();
});

/**
 * Throw `ValidationError` unless `text` is JSON within the depth bound whose
 * strings are all well-formed.
 *
 * @param text the body
 */
export function checkJson(text: string): void {
  if (exceedsDepth(text, MAX_JSON_DEPTH)) {
    throw new ValidationError(`Malformed JSON body: nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    JSON.parse(text, (key, value) => {
      if (!key.isWellFormed() || (typeof value === "string" && !value.isWellFormed())) {
        throw new IllFormedUnicode();
      }
      return value;
    });
  } catch (err) {
    if (err instanceof IllFormedUnicode) {
      throw new ValidationError(
        "Malformed JSON body: strings must be well-formed Unicode (no lone surrogates)",
      );
    }
    throw new ValidationError("Malformed JSON body: not valid JSON");
  }
}

class IllFormedUnicode extends Error {}

function exceedsDepth(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) return true;
    } else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return false;
}
