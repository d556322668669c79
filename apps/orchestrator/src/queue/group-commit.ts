/** Bounds one statement's parameter and lock set; the rest waits for the next flush. */
const DEFAULT_MAX_BATCH = 500;

interface Waiter<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: one flush in flight at a time, and the next batch is whatever arrived meanwhile.
 * The first flush starts at the end of the current event-loop turn (`setImmediate`), not at once:
 * everything submitted in the same turn shares it, such as the callers one statement's replies
 * resume (ten claims answered together report their ten successes together) or the requests read
 * in one poll. There is no timer, so a lone item waits for nothing else, and batches only grow
 * under load, where they pay: one statement, one round trip, one commit for all of them.
 * `flushBatch` answers one result per item, in order; if it throws, every item of that batch fails
 * alike.
 */
export class GroupCommit<T, R> {
  #queue: Waiter<T, R>[] = [];
  #flushing = false;

  constructor(
    private readonly flushBatch: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = DEFAULT_MAX_BATCH,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.maxBatch);
        try {
          const results = await this.flushBatch(batch.map((w) => w.item));
          batch.forEach((w, i) => w.resolve(results[i] as R));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
