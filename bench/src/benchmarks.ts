import type { Benchmark } from "./benchmark.js";
import { pickup } from "./pickup.js";

/** Every benchmark, in report order. */
export const BENCHMARKS: Benchmark<never>[] = [pickup] as unknown as Benchmark<never>[];
