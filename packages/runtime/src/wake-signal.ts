/**
 * A level-free wake-up: `wait()` resolves at the next `notify()` or after `ms`, whichever comes
 * first. The orchestrator wakes long-polling claims with it when a job becomes queued (LISTEN
 * fleet_job_queued; the timeout is the safety tick for a passed `run_after` or a notification
 * lost while reconnecting); the worker's loops react at once when a job slot frees up or the
 * heartbeat recovers, without polling hard.
 */
export class WakeSignal {
  readonly #waiters = new Set<() => void>();
  #closed = false;
  #generation = 0;

  /**
   * Counts wake-ups. A claimer reads it BEFORE its claim statement and passes it to `wait`: a
   * NOTIFY that lands between the statement's snapshot and `wait()` registering would otherwise
   * be lost and the claim would sleep a whole safety tick (the benchmark saw ~1 s pickups).
   */
  get generation(): number {
    return this.#generation;
  }

  /** Shutting down: wake everyone now and never wait again, so held claims answer at once. */
  close(): void {
    this.#closed = true;
    this.notify();
  }

  get closed(): boolean {
    return this.#closed;
  }

  notify(): void {
    this.#generation += 1;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * Resolves on the next wake, after `ms`, or when `signal` aborts — whichever comes first; at
   * once when a wake happened since the caller read `generation` as `seen`.
   */
  wait(ms: number, signal?: AbortSignal, seen?: number): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted || this.#closed || (seen !== undefined && seen !== this.#generation)) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  get waiting(): number {
    return this.#waiters.size;
  }
}
