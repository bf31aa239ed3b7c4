/**
 * Group commit: jobs for one group (one key) are handled a batch at a time,
 * and jobs that arrive while a batch runs form the next batch.
 *
 * Why: every signature must be durable (idempotency row, velocity row, audit
 * row) before it is released, and requests for one key are serialised by the
 * key's lock anyway. Writing a batch in one transaction — one lock, one read
 * of the key, one commit — costs about what a single request costs, so under
 * load the database work per signature shrinks with the batch (the technique
 * of database group commit, and of LND's batched bbolt transactions). A lone
 * request is a batch of one and waits for nothing.
 *
 * @module
 */

/** What a batch decided for one of its jobs. */
export type JobOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Handles one batch and returns one outcome per job, in order. Throwing fails
 * every job of the batch with that error (e.g. the commit failed: nothing of
 * the batch may be released).
 */
export type BatchHandler<J, R> = (group: string, jobs: readonly J[]) => Promise<JobOutcome<R>[]>;

interface Pending<J, R> {
  job: J;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/** Batches of jobs per group, one batch in flight per group. */
export class GroupCommit<J, R> {
  readonly #handle: BatchHandler<J, R>;
  readonly #maxBatch: number;
  readonly #queues = new Map<string, Pending<J, R>[]>();

  /**
   * @param handle runs one batch
   * @param options `maxBatch`: most jobs per batch (bounds a batch's transaction and latency)
   */
  constructor(handle: BatchHandler<J, R>, options: { maxBatch: number }) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError('GroupCommit: "maxBatch" must be an integer ≥ 1');
    }
    this.#handle = handle;
    this.#maxBatch = options.maxBatch;
  }

  /**
   * Queue `job` in `group`; settles with its outcome once its batch is done.
   *
   * @param group jobs of one group are batched together
   * @param job the work
   */
  submit(group: string, job: J): Promise<R> {
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    const queue = this.#queues.get(group);
    if (queue !== undefined) {
      queue.push({ job, resolve, reject });
    } else {
      const fresh = [{ job, resolve, reject }];
      this.#queues.set(group, fresh);
      void this.#drain(group, fresh);
    }
    return promise;
  }

  async #drain(group: string, queue: Pending<J, R>[]): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, this.#maxBatch);
      let outcomes: JobOutcome<R>[];
      try {
        outcomes = await this.#handle(group, batch.map((p) => p.job));
        if (outcomes.length !== batch.length) {
          throw new Error(`GroupCommit: ${outcomes.length} outcomes for ${batch.length} jobs`);
        }
      } catch (err) {
        for (const p of batch) p.reject(err);
        continue;
      }
      batch.forEach((p, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) p.resolve(outcome.value);
        else p.reject(outcome.error);
      });
    }
    this.#queues.delete(group);
  }
}
