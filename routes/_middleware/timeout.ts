/** Bounds how long a handler may run; the client gets a 504 problem, not a hung socket. */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../_env.ts";
import { UpstreamTimeoutError } from "../../src/errors/mod.ts";
import { withDeadline } from "../../src/util/deadline.ts";

/** Fail the request with 504 after `ms`. */
export function requestTimeout(ms: number) {
  return createMiddleware<AppEnv>(async (_c, next) => {
    await withDeadline(next(), ms, () => {
      throw new UpstreamTimeoutError(`Request did not complete within ${ms} ms`);
    });
  });
}
