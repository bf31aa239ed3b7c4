/** Request id: honour a safe incoming `X-Request-Id`, else generate one. */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../_env.ts";

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Sets `requestId` and echoes it as `X-Request-Id`. */
export const requestId = createMiddleware<AppEnv>(async (c, next) => {
  const incoming = c.req.header("x-request-id");
  const id = incoming !== undefined && SAFE_ID.test(incoming) ? incoming : crypto.randomUUID();
  c.set("requestId", id);
  c.header("X-Request-Id", id);
  await next();
});
