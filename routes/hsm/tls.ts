/**
 * The HSM's only listener: HTTPS with mutual TLS, TLS 1.3 only. `Deno.serve`
 * cannot demand client certificates, so this uses `node:https`, which can:
 * the handshake fails for a client without a certificate chaining to the
 * configured CA (expired and not-yet-valid ones included), before any request
 * is read. The certificate's subject (CN, or a DNS SAN) must then be on the
 * allowlist, which names the client's tenant; anything else is a 403 and no
 * route runs.
 */
import https from "node:https";
import type { TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import type { Hono } from "hono";
import type { HsmClient, HsmEnv } from "./app.ts";
import type { Logger } from "../../src/obs/logger.ts";

/** TLS material and the client allowlist. */
export interface MtlsOptions {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  /** CA that client certificates must chain to. */
  clientCaPem: string;
  /** Certificate subject (CN or DNS SAN) → tenant. */
  allowlist: ReadonlyMap<string, string>;
  logger: Logger;
}

/** A running server. */
export interface MtlsServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Stop accepting, wait for open requests up to `graceMs`, then cut the rest. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The allowlisted identity of a verified peer certificate, or null.
 *
 * @param cert `socket.getPeerCertificate()`
 * @param allowlist subject → tenant
 */
export function identify(
  cert: { subject?: { CN?: string | string[] }; subjectaltname?: string } | undefined,
  allowlist: ReadonlyMap<string, string>,
): HsmClient | null {
  if (cert === undefined) return null;
  const cn = cert.subject?.CN;
  const names = [
    ...(typeof cn === "string" ? [cn] : Array.isArray(cn) ? cn : []),
    ...(cert.subjectaltname ?? "").split(",").map((s) => s.trim())
      .filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4)),
  ];
  for (const name of names) {
    const tenant = allowlist.get(name);
    if (tenant !== undefined) return { tenant, subject: name };
  }
  return null;
}

/**
 * Serve `app` over mTLS.
 *
 * @param app the HSM app
 * @param options listen address, TLS material, allowlist
 */
export async function serveMtls(app: Hono<HsmEnv>, options: MtlsOptions): Promise<MtlsServer> {
  const { logger, allowlist } = options;
  const listener = getRequestListener((request, env) => {
    const socket = (env as { incoming: { socket: TLSSocket } }).incoming.socket;
    // rejectUnauthorized already ended unverified handshakes; checked again so a
    // change of options can never open the API.
    const client = socket.authorized ? identify(socket.getPeerCertificate(), allowlist) : null;
    if (client === null) {
      logger.warn("hsm client refused: certificate subject not on the allowlist", {
        subject: socket.getPeerCertificate()?.subject?.CN ?? null,
      });
      return Response.json({ title: "Forbidden", status: 403 }, { status: 403 });
    }
    return app.fetch(request, { client });
  });
  const server = https.createServer({
    cert: options.certPem,
    key: options.keyPem,
    ca: options.clientCaPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  }, listener);
  server.on("tlsClientError", (err: Error) => {
    logger.warn("hsm tls handshake refused", { reason: err.message.slice(0, 200) });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close(graceMs = 5_000) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections?.();
          resolve();
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections?.();
      });
    },
  };
}
