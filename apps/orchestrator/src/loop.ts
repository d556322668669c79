import type { Logger } from "pino";

export interface Loop {
  /** Run the next pass now instead of at the next tick (coalesced if one is running). */
  nudge(): void;
  /** Stops scheduling and waits for a pass in progress to finish. */
  stop(): Promise<void>;
}

/**
 * A `setTimeout` chain, never `setInterval`: a slow pass (a database hiccup) delays the next one
 * instead of piling passes on top of each other. A failing pass is logged and the loop goes on.
 */
export function startLoop(name: string, intervalMs: number, log: Logger, pass: () => Promise<void>): Loop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const schedule = (delay: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(run, delay);
  };

  function run(): void {
    if (running) {
      again = true;
      return;
    }
    running = pass()
      .catch((err: unknown) => log.error({ err, loop: name }, "loop_pass_failed"))
      .finally(() => {
        running = undefined;
        const soon = again;
        again = false;
        schedule(soon ? 0 : intervalMs);
      });
  }

  schedule(0);
  return {
    nudge: () => schedule(0),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
