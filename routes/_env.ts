/** Hono environment shared by every route module. */
import type { Principal } from "../src/auth/principal.ts";

/** Context variables set by the middleware chain. */
export interface AppVariables {
  requestId: string;
  /** Set by the auth middleware on authenticated requests. */
  principal: Principal;
  /** The client address used for per-IP limits. */
  clientIp: string;
}

/** The one `Env` type of the app. */
export interface AppEnv {
  Variables: AppVariables;
  Bindings: { remoteAddr?: Deno.Addr };
}
