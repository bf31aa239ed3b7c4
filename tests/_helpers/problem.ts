import assert from "node:assert/strict";

/**
 * Assert `res` is an RFC 9457 problem with `status` and `code`; returns the body.
 *
 * @param res the response
 * @param status expected HTTP status
 * @param code expected problem code (the end of `type`)
 */
export async function assertProblem(
  res: Response,
  status: number,
  code?: string,
): Promise<Record<string, unknown>> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = JSON.parse(text) as Record<string, unknown>;
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  assert.equal(typeof body.detail, "string");
  assert.equal(typeof body.instance, "string");
  if (code !== undefined) assert.equal(body.type, `urn:anya-edge:problem:${code}`);
  assert.doesNotMatch(
    text,
    /\bat [\w.<>]+ \(|file:\/\/|node_modules/,
    "no stack traces in problems",
  );
  return body;
}
