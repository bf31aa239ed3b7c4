/** `GroupCommit`: one batch in flight per group, later jobs batched, outcomes per job. */
import assert from "node:assert/strict";
import { GroupCommit, type JobOutcome } from "../../src/hsm_server/group_commit.ts";

Deno.test("GroupCommit batches jobs that arrive while a batch runs, per group", async () => {
  const batches: string[] = [];
  const gate = Promise.withResolvers<void>();
  const commit = new GroupCommit<number, number>(async (group, jobs) => {
    batches.push(`${group}:${jobs.join(",")}`);
    if (jobs[0] === 1) await gate.promise;
    return jobs.map((j) => ({ ok: true, value: j * 10 }));
  }, { maxBatch: 2 });
  const first = commit.submit("a", 1);
  const queued = [2, 3, 4].map((j) => commit.submit("a", j));
  const other = commit.submit("b", 9);
  assert.equal(await other, 90, "another group does not wait");
  gate.resolve();
  assert.deepEqual(await Promise.all([first, ...queued]), [10, 20, 30, 40]);
  assert.deepEqual(batches, ["a:1", "b:9", "a:2,3", "a:4"]);
});

Deno.test("GroupCommit settles each job with its own outcome; a throwing batch fails all", async () => {
  let fail = false;
  const commit = new GroupCommit<number, number>((_, jobs) => {
    if (fail) return Promise.reject(new Error("commit failed"));
    return Promise.resolve(
      jobs.map((j): JobOutcome<number> =>
        j % 2 === 0 ? { ok: true, value: j } : { ok: false, error: new RangeError(`odd ${j}`) }
      ),
    );
  }, { maxBatch: 8 });
  assert.equal(await commit.submit("g", 2), 2);
  await assert.rejects(commit.submit("g", 3), RangeError);
  fail = true;
  const results = await Promise.allSettled([commit.submit("g", 4), commit.submit("g", 6)]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.equal(await commit.submit("g", 8), 8, "the group keeps working after a failed batch");
});

Deno.test("GroupCommit refuses a handler that loses outcomes, and a bad maxBatch", async () => {
  const commit = new GroupCommit<number, number>(() => Promise.resolve([]), { maxBatch: 4 });
  await assert.rejects(commit.submit("g", 1), /0 outcomes for 1 jobs/);
  assert.throws(() => new GroupCommit(() => Promise.resolve([]), { maxBatch: 0 }), RangeError);
});
