/**
 * Structured JSON logs, one object a line. Every field passes through
 * `redact()` first, so a secret handed to the logger by mistake is not written.
 *
 * @module
 */
import { redact } from "../config/redact.ts";

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Where a formatted line goes; tests pass an array-backed sink. */
export type LogSink = (level: LogLevel, line: string) => void;

/** A logger with bound fields. */
export interface Logger {
  /** Log detail useful only while investigating. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Log a normal event. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Log something unexpected that the service recovered from. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Log a failure. */
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** Writes errors and warnings to stderr, the rest to stdout. */
export function consoleSink(level: LogLevel, line: string): void {
  // deno-lint-ignore no-console -- the one sanctioned writer to stderr
  if (level === "error" || level === "warn") console.error(line);
  // deno-lint-ignore no-console -- the one sanctioned writer to stdout
  else console.log(line);
}

/**
 * Create a JSON logger.
 *
 * @param options minimum level, sink and fields bound to every line
 */
export function createLogger(
  options: { level?: LogLevel; sink?: LogSink; fields?: Record<string, unknown> } = {},
): Logger {
  const min = ORDER[options.level ?? "info"];
  const sink = options.sink ?? consoleSink;
  const bound = options.fields ?? {};
  function write(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (ORDER[level] < min) return;
    const record = redact({ ...bound, ...fields }) as Record<string, unknown>;
    sink(level, JSON.stringify({ ts: new Date().toISOString(), level, msg, ...record }));
  }
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...bound, ...fields } }),
  };
}
