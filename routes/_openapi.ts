/**
 * Route-building helpers: every router validates with zod through
 * `@hono/zod-openapi`, so the same schemas produce `/openapi.json`; failed
 * validation becomes a `ValidationError` problem, never zod's raw output.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "./_env.ts";
import { type FieldIssue, ValidationError } from "../src/errors/mod.ts";

/** A router whose validation failures are problem+json. */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const issues: FieldIssue[] = result.error.issues.slice(0, 20).map((i) => ({
        path: [result.target, ...i.path.map(String)].join("."),
        message: i.message,
      }));
      throw new ValidationError(
        `Invalid ${result.target}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
        { issues },
      );
    },
  });
}

/** The schema of a problem+json body, for documentation. */
export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string(),
}).passthrough().openapi("Problem");

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

/** Problem responses every authenticated route may return. */
export const AUTH_PROBLEMS = {
  400: problem("Invalid request"),
  401: problem("Missing or invalid API key"),
  403: problem("API key lacks the required scope"),
  429: problem("Rate limit exceeded"),
} as const;

/** A problem response entry, for routes that document more statuses. */
export { problem };

/** Bearer security requirement for `createRoute({ security })`. */
export const BEARER = [{ bearerAuth: [] }];

/** JSON request body helper for `createRoute`. */
export function jsonBody<T extends z.ZodType>(schema: T, description = "JSON body") {
  return { required: true, description, content: { "application/json": { schema } } };
}

/** JSON response helper for `createRoute`. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}
