/**
 * An `HttpClient` transport over `node:https` that trusts exactly one
 * certificate: the node's own, pinned by its PEM or by the SHA-256 of its DER
 * (BTCPay Server's `certthumbprint`). It exists for Lightning nodes such as
 * LND, whose auto-generated `tls.cert` is self-signed **and** flagged as a CA
 * (BasicConstraints CA:TRUE): Deno's `fetch` refuses such a certificate as a
 * server certificate even when it is in `caCerts` (webpki
 * `CaUsedAsEndEntity`), while `node:tls` accepts it as its own trust anchor.
 *
 * Trust rules, checked on every new connection after the TLS handshake and
 * before the socket is handed to the HTTP layer, so no request byte is ever
 * written to an unverified peer:
 *
 * - `certPem`: the certificate is the only extra CA (`ca`), the chain must
 *   verify, and the presented leaf must be byte-for-byte the pinned
 *   certificate. The host-name check is replaced by that comparison
 *   (`checkServerIdentity`): LND's certificate lists `localhost` and its IPs,
 *   not necessarily the name the edge uses, and an exact pin is stronger than
 *   a name anyway. A certificate *issued by* the pinned one (it is a CA) is
 *   refused.
 * - `sha256Fingerprint`: the certificate is not known in advance, so it is
 *   fetched first by a probe connection (`rejectUnauthorized: false`) that
 *   only completes a handshake, reads the presented chain and closes: no
 *   request byte is sent on it, and it grants no trust. When SHA-256(DER) of
 *   the presented leaf equals the pin, the top of the presented chain (the
 *   leaf itself when self-signed, like LND's; the issuing CA when the node
 *   sends it, like Core Lightning's) becomes the trust anchor and the leaf the
 *   pinned certificate, and the real connection is made exactly as with
 *   `certPem`: full verification, including the handshake signature that
 *   proves the peer holds the certificate's private key (a verifier told to
 *   ignore certificate errors need not check that). A changed certificate is
 *   probed again and must match the pin again.
 *
 * Connections are pooled by a keep-alive `https.Agent`; response bodies
 * stream (a `ReadableStream` fed from the `node:http` response with
 * back-pressure), and the request's signal aborts both the request and its
 * body.
 *
 * @module
 */
import { Agent, request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { connect, type PeerCertificate, type TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Transport } from "./http_client.ts";

/** How the node's certificate is pinned: exactly one of the two. */
export interface PinnedTlsOptions {
  /** The node's certificate (PEM, exactly one `CERTIFICATE` block), e.g. LND's `tls.cert`. */
  certPem?: string;
  /** SHA-256 of the certificate's DER: 64 hex digits, optionally colon-separated, any case. */
  sha256Fingerprint?: string;
  /** Gives up on a TCP connect plus TLS handshake after this long (default 10 s). */
  connectTimeoutMs?: number;
}

/** A transport that owns a connection pool; `close()` destroys it. */
export type PinnedTlsTransport = Transport & { close(): void };

/** `code` of the error raised when the peer presents another certificate. */
export const PIN_MISMATCH_CODE = "ERR_TLS_CERT_PIN_MISMATCH";

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;
const PEM_ANY = /-----BEGIN ([A-Z0-9 ]+)-----/g;
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

type Pin =
  | { kind: "certificate"; certPem: string; der: Uint8Array }
  | { kind: "fingerprint"; sha256: Uint8Array };

/** What a connection is verified against: the trust anchor and the exact leaf. */
interface Anchor {
  caPem: string;
  leafDer: Uint8Array;
}

/**
 * Build a transport for `HttpClient` (`deps.transport`) that talks HTTPS to
 * one node whose certificate is pinned.
 *
 * @example
 * ```ts
 * const transport = pinnedTlsTransport({ certPem: await Deno.readTextFile("tls.cert") });
 * const lnd = new HttpClient(options, { transport }); // lnd.close() also closes the pool
 * ```
 *
 * @param opts the pinned certificate (PEM) or its SHA-256 fingerprint
 * @returns the transport; its `close()` destroys pooled connections
 * @throws {TypeError} neither or both pins given, or a pin that does not parse
 * @throws {RangeError} a non-positive `connectTimeoutMs`
 */
export function pinnedTlsTransport(opts: PinnedTlsOptions): PinnedTlsTransport {
  const pin = parsePin(opts);
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs <= 0) {
    throw new RangeError(`connectTimeoutMs must be a positive number, got ${connectTimeoutMs}`);
  }
  const agent = new PinnedAgent(pin, connectTimeoutMs);
  const transport = (request: Request, init: { signal: AbortSignal }) =>
    send(agent, request, init.signal);
  return Object.assign(transport, { close: () => agent.close() });
}

/** What `Agent.createConnection` receives that matters here. */
interface ConnectTarget {
  host?: string | null;
  port?: number | string | null;
  servername?: string;
}

/**
 * The asynchronous form of `Agent.createConnection` that Node documents (the
 * socket is passed to `callback`, the return value is ignored) but
 * `@types/node` does not declare.
 */
type AsyncCreateConnection = (
  options: ConnectTarget,
  callback: (err: Error | null, socket?: Duplex) => void,
) => undefined;

/** A keep-alive agent whose new sockets are handed over only once the pin checks out. */
class PinnedAgent extends Agent {
  readonly #pin: Pin;
  readonly #connectTimeoutMs: number;
  readonly #connecting = new Set<TLSSocket>();
  /** For a fingerprint pin: what the probe found, until a connection disagrees. */
  #probed: Anchor | undefined;

  constructor(pin: Pin, connectTimeoutMs: number) {
    super({ keepAlive: true, scheduling: "lifo" });
    this.#pin = pin;
    this.#connectTimeoutMs = connectTimeoutMs;
    // An own property shadows the prototype method the agent calls per new socket.
    const createConnection: AsyncCreateConnection = (options, callback) =>
      this.#connect(options, callback);
    Object.assign(this, { createConnection });
  }

  /**
   * Open and verify one connection; the request is written only after
   * `callback` gets the socket, i.e. after the pin checked out.
   */
  #connect(
    options: ConnectTarget,
    callback: (err: Error | null, socket?: Duplex) => void,
  ): undefined {
    const pin = this.#pin;
    if (pin.kind === "certificate") {
      this.#connectVerified({ caPem: pin.certPem, leafDer: pin.der }, options, callback);
      return undefined;
    }
    const known = this.#probed;
    const anchor = known !== undefined
      ? Promise.resolve(known)
      : this.#probe(options, pin.sha256).then((found) => this.#probed = found);
    anchor.then(
      (found) =>
        this.#connectVerified(found, options, (err, socket) => {
          // The node may have a new certificate: probe again next time, against the same pin.
          if (err !== null) this.#probed = undefined;
          callback(err, socket);
        }),
      (err: Error) => callback(err),
    );
    return undefined;
  }

  /**
   * Open a connection only to fetch the presented chain: handshake, read,
   * destroy. Nothing is sent on it and nothing it says is trusted unless the
   * leaf matches the pin.
   */
  #probe(options: ConnectTarget, sha256Pin: Uint8Array): Promise<Anchor> {
    return new Promise<Anchor>((resolve, reject) => {
      const socket = this.#open(options, { rejectUnauthorized: false }, (err) => {
        if (err !== null) {
          reject(err);
          return;
        }
        const leaf = socket.getPeerCertificate(true) as DetailedCertificate | undefined;
        socket.destroy();
        const leafRaw = leaf?.raw;
        if (leaf === undefined || leafRaw === undefined || leafRaw.byteLength === 0) {
          reject(mismatch());
          return;
        }
        if (!equalBytes(sha256(new Uint8Array(leafRaw)), sha256Pin)) {
          reject(mismatch());
          return;
        }
        // The top of the chain the node presented: the leaf when it is self-signed.
        let top: DetailedCertificate = leaf;
        for (let i = 0; i < 8; i++) {
          const up: DetailedCertificate | undefined = top.issuerCertificate;
          if (up === undefined || up === top || up.raw === undefined) break;
          top = up;
        }
        resolve({ caPem: toPem(new Uint8Array(top.raw!)), leafDer: new Uint8Array(leafRaw) });
      });
    });
  }

  /** A connection verified against `anchor`, handed to the agent only once the leaf matches. */
  #connectVerified(
    anchor: Anchor,
    options: ConnectTarget,
    callback: (err: Error | null, socket?: Duplex) => void,
  ): void {
    const socket = this.#open(options, {
      ca: anchor.caPem,
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        cert.raw !== undefined && equalBytes(cert.raw, anchor.leafDer) ? undefined : mismatch(),
    }, (err) => {
      if (err === null) err = checkPeer(socket, anchor.leafDer);
      if (err === null) {
        callback(null, socket);
        return;
      }
      socket.destroy();
      callback(err);
    });
  }

  /** TCP + TLS handshake with a deadline; `done` gets null once the handshake is over. */
  #open(
    options: ConnectTarget,
    trust: Record<string, unknown>,
    done: (err: Error | null) => void,
  ): TLSSocket {
    const host = options.host ?? "localhost";
    const servername = options.servername || (isIP(host) === 0 ? host : undefined);
    const socket = connect({
      host,
      port: Number(options.port ?? 443),
      ...(servername === undefined ? {} : { servername }),
      ALPNProtocols: ["http/1.1"],
      ...trust,
    });
    this.#connecting.add(socket);
    let finished = false;
    const finish = (err: Error | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      this.#connecting.delete(socket);
      socket.off("secureConnect", onSecure);
      socket.off("error", finish);
      socket.off("close", onClose);
      if (err !== null) socket.destroy();
      done(err);
    };
    const onSecure = () => finish(null);
    const onClose = () => finish(new Error("Connection closed during the TLS handshake"));
    const timer = setTimeout(() => {
      finish(
        Object.assign(
          new Error(`TLS connection not established within ${this.#connectTimeoutMs} ms`),
          { code: "ETIMEDOUT" },
        ),
      );
    }, this.#connectTimeoutMs);
    socket.once("secureConnect", onSecure);
    socket.on("error", finish);
    socket.once("close", onClose);
    return socket;
  }

  /** Destroy pooled, active and still-connecting sockets. */
  close(): void {
    for (const socket of this.#connecting) socket.destroy();
    this.#connecting.clear();
    this.destroy();
  }
}

/** Null when the verified peer presented the pinned leaf, else the error to fail with. */
function checkPeer(socket: TLSSocket, leafDer: Uint8Array): Error | null {
  const raw = socket.getPeerCertificate(true)?.raw;
  if (raw === undefined || raw.byteLength === 0) return mismatch();
  // checkServerIdentity compared already, but it is skipped on resumed sessions.
  return socket.authorized && equalBytes(raw, leafDer) ? null : mismatch();
}

/** `getPeerCertificate(true)`: the chain hangs off `issuerCertificate`. */
interface DetailedCertificate {
  raw?: Uint8Array;
  issuerCertificate?: DetailedCertificate;
}

function toPem(der: Uint8Array): string {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const body = btoa(binary).match(/.{1,64}/g)?.join("\n") ?? "";
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function mismatch(): Error {
  // No fingerprints in the message: it reaches logs, and the pin is config.
  return Object.assign(new Error("The server's TLS certificate is not the pinned certificate"), {
    code: PIN_MISMATCH_CODE,
  });
}

/** One request over the agent; resolves at the response head, the body streams. */
async function send(agent: PinnedAgent, request: Request, signal: AbortSignal): Promise<Response> {
  const url = new URL(request.url);
  if (url.protocol !== "https:") {
    throw new TypeError(`A pinned TLS transport only speaks https, got "${url.protocol}"`);
  }
  // Bodies of calls to a node are small JSON documents: buffer them.
  const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer());
  signal.throwIfAborted();
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => headers[name] = value);
  if (body !== null) headers["content-length"] = String(body.byteLength);
  return await new Promise<Response>((resolve, reject) => {
    let settled = false;
    let bodyController: ReadableStreamDefaultController<Uint8Array> | undefined;
    const cleanup = () => signal.removeEventListener("abort", onAbort);
    const fail = (err: unknown) => {
      cleanup();
      if (!settled) {
        settled = true;
        reject(err);
        return;
      }
      try {
        bodyController?.error(err);
      } catch {
        // the body already ended or was cancelled
      }
    };
    const req = httpsRequest({
      agent,
      method: request.method,
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: url.port === "" ? 443 : Number(url.port),
      path: url.pathname + url.search,
      headers,
    }, (res) => {
      settled = true;
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 599) {
        res.destroy();
        cleanup();
        reject(new TypeError(`Unexpected HTTP status ${status}`));
        return;
      }
      const responseHeaders = new Headers();
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
        responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
      }
      let stream: ReadableStream<Uint8Array> | null = null;
      if (request.method === "HEAD" || NULL_BODY_STATUSES.has(status)) {
        res.resume();
        res.once("end", cleanup);
      } else {
        stream = bodyStream(res, {
          onStart: (controller) => bodyController = controller,
          onDone: cleanup,
        });
      }
      resolve(
        new Response(stream, {
          status,
          statusText: res.statusMessage ?? "",
          headers: responseHeaders,
        }),
      );
    });
    const onAbort = () => {
      req.destroy();
      fail(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", fail);
    req.end(body ?? undefined);
  });
}

/** The node response as a web stream: pauses the socket while the reader lags behind. */
function bodyStream(
  res: IncomingMessage,
  hooks: {
    onStart: (controller: ReadableStreamDefaultController<Uint8Array>) => void;
    onDone: () => void;
  },
): ReadableStream<Uint8Array> {
  let finished = false;
  const finish = () => {
    finished = true;
    hooks.onDone();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      hooks.onStart(controller);
      res.on("data", (chunk: Uint8Array) => {
        if (finished) return;
        // A copy: node may reuse pooled buffers.
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 0) <= 0) res.pause();
      });
      res.once("end", () => {
        if (finished) return;
        finish();
        controller.close();
      });
      res.once("error", (err) => {
        if (finished) return;
        finish();
        controller.error(err);
      });
      res.once("close", () => {
        if (finished) return;
        finish();
        // Closed before "end": the connection broke mid-body.
        controller.error(
          Object.assign(new Error("Connection closed before the response body ended"), {
            code: "ECONNRESET",
          }),
        );
      });
    },
    pull() {
      res.resume();
    },
    cancel() {
      finish();
      res.destroy();
    },
  }, { highWaterMark: 4 });
}

function parsePin(opts: PinnedTlsOptions): Pin {
  if (typeof opts !== "object" || opts === null) {
    throw new TypeError("pinnedTlsTransport needs { certPem } or { sha256Fingerprint }");
  }
  const { certPem, sha256Fingerprint } = opts;
  if ((certPem === undefined) === (sha256Fingerprint === undefined)) {
    throw new TypeError("pinnedTlsTransport needs exactly one of certPem and sha256Fingerprint");
  }
  if (certPem !== undefined) {
    if (typeof certPem !== "string") throw new TypeError("certPem must be a PEM string");
    const blocks = [...certPem.matchAll(PEM_ANY)];
    const certs = [...certPem.matchAll(PEM_CERTIFICATE)];
    if (blocks.length !== 1 || certs.length !== 1) {
      throw new TypeError("certPem must hold exactly one PEM CERTIFICATE block");
    }
    let der: Uint8Array;
    try {
      der = Uint8Array.from(atob(certs[0]![1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
    } catch {
      throw new TypeError("certPem holds invalid base64");
    }
    return { kind: "certificate", certPem, der };
  }
  if (typeof sha256Fingerprint !== "string") {
    throw new TypeError("sha256Fingerprint must be a string of hex digits");
  }
  const hexDigits = sha256Fingerprint.replaceAll(":", "");
  if (!/^[0-9a-fA-F]{64}$/.test(hexDigits)) {
    throw new TypeError("sha256Fingerprint must be 64 hex digits (colons allowed)");
  }
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(hexDigits.slice(2 * i, 2 * i + 2), 16);
  return { kind: "fingerprint", sha256: bytes };
}

/** Byte equality without early exit, so timing does not hint at how much of a pin matched. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
