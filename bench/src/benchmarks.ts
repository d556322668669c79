import type { Benchmark } from "./benchmark.js";
import { claimHistory } from "./claim-history.js";
import { claimThroughput } from "./claim-throughput.js";
import { heartbeatIngest } from "./heartbeat-ingest.js";
import { liveness } from "./liveness.js";
import { pickup } from "./pickup.js";
import { workerMemory } from "./worker-memory.js";

/** Every benchmark, in report order. */
export const BENCHMARKS: Benchmark<never>[] = [pickup, claimThroughput, claimHistory, heartbeatIngest, liveness, workerMemory] as unknown as Benchmark<never>[];
