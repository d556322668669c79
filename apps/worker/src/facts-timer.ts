import type { SystemFacts } from "@fleet/contract";
import { collectSystemFacts, readGpu, type GpuFacts } from "./system-facts.js";

export interface FactsTimer {
  /** The last GPU read, or null before the first or when there is none. */
  gpu(): GpuFacts | null;
  /** The last system facts, or null before the first pass finished. */
  system(): SystemFacts | null;
  stop(): void;
}

/**
 * GPU and system facts, gathered in the background and refreshed every `intervalMs`: the first
 * heartbeat never waits for them. A failed pass keeps the previous system facts.
 */
export function startFactsTimer(opts: { workDir: string; intervalMs?: number }): FactsTimer {
  const intervalMs = opts.intervalMs ?? 60_000;
  const controller = new AbortController();
  let gpu: GpuFacts | null = null;
  let system: SystemFacts | null = null;
  let timer: NodeJS.Timeout | null = null;

  const refresh = async () => {
    gpu = await readGpu(controller.signal).catch(() => null);
    system = await collectSystemFacts({ workDir: opts.workDir, gpu }).catch(() => system);
    if (!controller.signal.aborted) timer = setTimeout(() => void refresh(), intervalMs).unref();
  };
  void refresh();

  return {
    gpu: () => gpu,
    system: () => system,
    stop() {
      controller.abort();
      if (timer) clearTimeout(timer);
    },
  };
}
