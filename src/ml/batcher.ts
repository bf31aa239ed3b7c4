/**
 * Request coalescing for one model version: rows from concurrent callers go
 * into one `session.run`, and each caller gets its own rows back.
 *
 * One run is in flight at a time (onnxruntime-web's WASM backend serves one
 * run per session anyway); callers that arrive meanwhile wait together and
 * form the next batch, up to `maxBatch` rows. An idle batcher waits at most
 * `maxWaitMicros` for company before running a lone request; with 0 it runs
 * as soon as the current task ends (a microtask), so callers submitting in
 * the same tick share a run and a single caller pays no timer.
 *
 * @module
 */

/**
 * Starts a run of `count` rows (row-major, `inWidth` each). Its raw result
 * goes to {@linkcode BatchRead}: reading in the batcher's own continuation
 * rather than a `then` of the runner's saves a promise hop on every call.
 */
export type BatchRun<R> = (rows: Float32Array, count: number) => Promise<R>;

/** Reads a run's `count * outWidth` output values; throwing fails the whole batch. */
export type BatchRead<R> = (result: R, count: number) => Float32Array;

/** Options of {@linkcode MicroBatcher}. */
export interface BatcherOptions {
  /** Input row width. */
  inWidth: number;
  /** Output row width. */
  outWidth: number;
  /** Largest batch run at once, in rows. */
  maxBatch: number;
  /** How long an idle batcher waits for more requests, in microseconds. */
  maxWaitMicros: number;
  /**
   * Checks one caller's outputs; an error returned rejects that caller alone,
   * so rows one caller sent cannot fail the others who shared its run.
   */
  checkOutputs?: (outputs: Float32Array) => Error | undefined;
}

interface Pending {
  rows: Float32Array;
  count: number;
  resolve: (out: Float32Array) => void;
  reject: (err: unknown) => void;
}

/** Batch statistics (for metrics and the benchmark). */
export interface BatcherStats {
  /** Runs made. */
  runs: number;
  /** Rows run. */
  rows: number;
}

/** Coalesces concurrent requests into batches. */
export class MicroBatcher<R> {
  readonly #run: BatchRun<R>;
  readonly #read: BatchRead<R>;
  readonly #opts: BatcherOptions;
  #queue: Pending[] = [];
  #queuedRows = 0;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushQueued = false;
  readonly stats: BatcherStats = { runs: 0, rows: 0 };

  /**
   * @param run starts a batch
   * @param read reads a finished batch's outputs
   * @param options widths and limits
   */
  constructor(run: BatchRun<R>, read: BatchRead<R>, options: BatcherOptions) {
    for (const k of ["inWidth", "outWidth", "maxBatch"] as const) {
      if (!Number.isInteger(options[k]) || options[k] < 1) {
        throw new RangeError(`Invalid ${k}: ${String(options[k])}`);
      }
    }
    if (!Number.isInteger(options.maxWaitMicros) || options.maxWaitMicros < 0) {
      throw new RangeError(`Invalid maxWaitMicros: ${String(options.maxWaitMicros)}`);
    }
    this.#run = run;
    this.#read = read;
    this.#opts = { ...options };
  }

  /**
   * Run `count` rows, alone or with other callers' rows.
   *
   * @param rows `count * inWidth` values, row-major
   * @param count number of rows (at most `maxBatch`)
   * @returns this caller's `count * outWidth` outputs
   */
  submit(rows: Float32Array, count: number): Promise<Float32Array> {
    if (!Number.isInteger(count) || count < 1 || count > this.#opts.maxBatch) {
      throw new RangeError(`Invalid count: expected 1..${this.#opts.maxBatch}, got ${count}`);
    }
    if (!(rows instanceof Float32Array) || rows.length !== count * this.#opts.inWidth) {
      throw new RangeError(`Invalid rows: expected ${count * this.#opts.inWidth} float32 values`);
    }
    const { promise, resolve, reject } = Promise.withResolvers<Float32Array>();
    this.#queue.push({ rows, count, resolve, reject });
    this.#queuedRows += count;
    this.#schedule();
    return promise;
  }

  #schedule(): void {
    if (this.#running) return; // the run in flight picks the queue up when it ends
    if (this.#queuedRows >= this.#opts.maxBatch) {
      this.#flush();
      return;
    }
    if (this.#opts.maxWaitMicros === 0) {
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => {
          this.#flushQueued = false;
          this.#flush();
        });
      }
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, this.#opts.maxWaitMicros / 1000);
  }

  #flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length === 0 || this.#running) return;
    const batch: Pending[] = [];
    let count = 0;
    while (this.#queue.length > 0 && count + this.#queue[0]!.count <= this.#opts.maxBatch) {
      const p = this.#queue.shift()!;
      batch.push(p);
      count += p.count;
    }
    this.#queuedRows -= count;
    this.#running = true;
    this.#execute(batch, count);
  }

  /** Run one batch and answer its callers; one `then` per run keeps a lone call cheap. */
  #execute(batch: Pending[], count: number): void {
    const { inWidth, outWidth } = this.#opts;
    let input: Float32Array;
    if (batch.length === 1) {
      input = batch[0]!.rows;
    } else {
      input = new Float32Array(count * inWidth);
      let at = 0;
      for (const p of batch) {
        input.set(p.rows, at);
        at += p.rows.length;
      }
    }
    this.stats.runs++;
    this.stats.rows += count;
    let running: Promise<R>;
    try {
      running = this.#run(input, count);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (result) => {
        let out: Float32Array;
        try {
          out = this.#read(result, count);
          if (out.length !== count * outWidth) {
            throw new Error(`Model returned ${out.length} values for ${count} rows of ${outWidth}`);
          }
        } catch (err) {
          for (const p of batch) p.reject(err);
          this.#finished();
          return;
        }
        const check = this.#opts.checkOutputs;
        let at = 0;
        for (const p of batch) {
          // Views, not copies: the run's output buffer belongs to this batch alone.
          const mine = out.subarray(at, at + p.count * outWidth);
          at += p.count * outWidth;
          const refused = check?.(mine);
          if (refused === undefined) p.resolve(mine);
          else p.reject(refused);
        }
        this.#finished();
      },
      (err) => {
        for (const p of batch) p.reject(err);
        this.#finished();
      },
    );
  }

  #finished(): void {
    this.#running = false;
    // Whoever arrived during the run goes now: they have already waited.
    if (this.#queue.length > 0) this.#flush();
  }
}
