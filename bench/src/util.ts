import { readFileSync } from "node:fs";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Uniform in [min, max): spreads events so nothing lines up with a timer by accident. */
export function between(min: number, max: number): number {
  return min + Math.random() * (max - min);
}

/** Installed version of a dependency of this package (for the report). */
export function packageVersion(name: string): string {
  try {
    const text = readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8");
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return "?";
  }
}

/** Runs `fn` every `ms` until the returned stop() is called; errors go to `onError`, never unhandled. */
export function every(ms: number, fn: () => Promise<unknown>, onError: (err: unknown) => void): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (stopped) return;
    fn().catch(onError).finally(() => {
      if (!stopped) timer = setTimeout(tick, ms);
    });
  };
  timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
