/** The client address used for per-IP limits and logs. */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../_env.ts";

/**
 * Set `clientIp` from the socket, or, behind a trusted proxy, from the
 * left-most `X-Forwarded-For` entry. Never trust the header otherwise: any
 * client could pick its own rate-limit bucket.
 */
export function clientIp(options: { trustProxy: boolean }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    let ip: string | undefined;
    if (options.trustProxy) {
      ip = c.req.header("x-forwarded-for")?.split(",")[0]?.trim() || undefined;
    }
    const addr = c.env?.remoteAddr;
    if (
      ip === undefined && addr !== undefined &&
      (addr.transport === "tcp" || addr.transport === "udp")
    ) {
      ip = addr.hostname;
    }
    c.set("clientIp", ip ?? "unknown");
    await next();
  });
}
