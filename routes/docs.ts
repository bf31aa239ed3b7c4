/**
 * `GET /openapi.json` (OpenAPI 3.1 generated from the routes' zod schemas) and
 * `GET /docs`, an interactive reference rendered from it. The page and its
 * script ship inside the build (text imports), so no CDN is involved.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./_env.ts";
import html from "./_docs/docs.html" with { type: "text" };
import script from "./_docs/docs_app.js" with { type: "text" };

const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Service identity shown in the document. */
export interface ApiInfo {
  version: string;
}

/**
 * Register the bearer scheme and mount `/openapi.json` and `/docs` on `app`.
 * Called last, so every route registered before is in the document.
 */
export function mountDocs(app: OpenAPIHono<AppEnv>, info: ApiInfo): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "An anya-edge API key: `anya_live_<keyid>_<secret>`",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "anya-edge",
      version: info.version,
      description:
        "Bitcoin edge service: PSBTs, remote HSM signing, Lightning, RGB, DLC and ML inference over plain HTTPS. Errors are RFC 9457 problem+json.",
    },
  });
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    return c.html(html);
  });
  app.get("/docs/app.js", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    c.header("Cache-Control", "public, max-age=300");
    return c.body(script, 200, { "Content-Type": "text/javascript; charset=utf-8" });
  });
}
