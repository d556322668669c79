import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startB2TestServer } from "@fleet/testing/b2-test-server";
import { startFileServer } from "@fleet/testing/file-server";
import { makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { startWorkerProcess, type WorkerProcess } from "@fleet/testing/worker-process";
import { table, text, type Benchmark, type BenchContext } from "./benchmark.js";
import { startBigOutputEngine } from "./big-output-engine.js";
import { FleetClient } from "./fleet-client.js";
import { startFleetOrchestrator } from "./fleet-orchestrator.js";
import { makePaddedVideo } from "./padded-video.js";
import { memory } from "./proc-stats.js";
import { sleep } from "./util.js";

export interface WorkerMemoryOptions {
  outputBytes: number;
  idleSec: number;
  /** Worker env: B2_PART_SIZE_MB / B2_LARGE_FILE_THRESHOLD_MB (its defaults in the full run). */
  workerEnv: Record<string, string>;
}

const MiB = 1024 * 1024;

export const workerMemory: Benchmark<WorkerMemoryOptions> = {
  name: "worker-memory",
  title: "6. Worker memory",
  defaults: { outputBytes: 1024 * MiB, idleSec: 15, workerEnv: {} },
  smoke: { outputBytes: 12 * MiB, idleSec: 1, workerEnv: { B2_PART_SIZE_MB: "5", B2_LARGE_FILE_THRESHOLD_MB: "5" } },
  run: runWorkerMemory,
};

/** Samples a process's RSS every `everyMs` until stopped. */
function sampler(pid: number, everyMs: number) {
  const samples: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const m = await memory(pid);
      if (m) samples.push(m.rss);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

async function runWorkerMemory(ctx: BenchContext, o: WorkerMemoryOptions) {
  const dir = await mkdtemp(join(tmpdir(), "fleet-bench-mem-"));
  const db = await ctx.databases.create("memory");
  const cleanups: (() => Promise<unknown>)[] = [];
  let worker: WorkerProcess | undefined;
  try {
    ctx.progress(`making a ${mib(o.outputBytes)} output video`);
    const output = join(dir, "output.mp4");
    await makePaddedVideo(output, o.outputBytes);
    await makeTestVideo(join(dir, "avatar.mp4"), { seconds: 2 });
    await makeTestAudio(join(dir, "voice.wav"), { seconds: 2 });
    const files = await startFileServer(dir);
    cleanups.push(() => files.close());
    const b2 = await startB2TestServer({ tmpRoot: dir });
    cleanups.push(() => b2.close());
    const engine = await startBigOutputEngine(output);
    cleanups.push(() => engine.close());
    const orchestrator = await startFleetOrchestrator(db.url);
    cleanups.push(() => orchestrator.stop());
    const client = new FleetClient({ url: orchestrator.url, internalApiKey: orchestrator.internalApiKey, publicApiKey: orchestrator.publicApiKey });
    cleanups.push(() => client.close());

    worker = await startWorkerProcess({
      orchestratorUrl: orchestrator.url,
      internalApiKey: orchestrator.internalApiKey,
      workerId: "mem-worker",
      workDir: join(dir, "work"),
      env: { INFERENCE_DRIVER: "http", INFERENCE_URL: engine.url, STORAGE: "b2", ...b2.env(), LOG_LEVEL: "info", ...o.workerEnv },
    });
    await worker.waitForLog("buffer_worker_heartbeat_ok", { timeoutMs: 30_000 });
    ctx.progress(`idle for ${o.idleSec} s`);
    const idle = sampler(worker.pid, 100);
    await sleep(o.idleSec * 1000);
    const idleSamples = await idle.stop();

    ctx.progress("job: download → engine → ffprobe → B2 upload");
    const busy = sampler(worker.pid, 50);
    const t0 = performance.now();
    const job = await client.createJob({ video_url: files.urlFor("/avatar.mp4"), audio_url: files.urlFor("/voice.wav") });
    let view = job;
    while (view.status === "queued" || view.status === "running") {
      if (performance.now() - t0 > 600_000) throw new Error("job did not finish in 10 minutes");
      await sleep(250);
      view = await client.getJob(job.id);
    }
    const jobSec = (performance.now() - t0) / 1000;
    const busySamples = await busy.stop();
    const end = await memory(worker.pid);
    if (view.status !== "succeeded") throw new Error(`job ${view.status}: ${view.error}`);
    const stored = b2.listObjects().find((obj) => obj.size === o.outputBytes);
    if (!stored) throw new Error(`no ${o.outputBytes}-byte object in the B2 test server: ${JSON.stringify(b2.listObjects())}`);

    const idleRss = [...idleSamples].sort((a, b) => a - b)[Math.floor(idleSamples.length / 2)] ?? NaN;
    const peakRss = Math.max(...busySamples);
    const hwm = end?.hwm ?? NaN;
    const metrics = (view.metrics ?? {}) as { stage_times?: { upload?: number }; worker_peak_rss_kb?: number };
    const uploadSec = metrics.stage_times?.upload ?? NaN;
    const parts = b2.requestCount("upload_part");
    return {
      targets: [
        { what: `worker peak RSS while uploading a ${mib(o.outputBytes)} output to B2`, target: "≤ 200 MiB", measured: mib(Math.max(peakRss, hwm)), met: Math.max(peakRss, hwm) <= 200 * MiB },
        { what: "worker idle RSS (heartbeating, long-polling)", target: "reported", measured: mib(idleRss), met: true },
      ],
      blocks: [
        text(
          "The real worker process (`apps/worker/dist/main.js` via `startWorkerProcess`, driver `http`, storage `b2`, default part size " +
            `${o.workerEnv.B2_PART_SIZE_MB ?? "100"} MB and large-file threshold ${o.workerEnv.B2_LARGE_FILE_THRESHOLD_MB ?? "200"} MB) joined a real ` +
            "orchestrator and ran one job end to end: download the inputs, call the engine, ffprobe the output, upload it to the B2 " +
            `test server (\`packages/testing\`, native B2 API, SHA-1 checked) in ${parts} parts, report success. The engine is a small ` +
            `server in \`bench/\` that answers every prediction by hard-linking a prepared ${mib(o.outputBytes)} mp4 (a real 2 s video ` +
            "padded with one `free` box) to the requested path, so the measurement is the worker's, not an encoder's. RSS was read " +
            `from \`/proc/<pid>/status\` (VmRSS every 100 ms while idle for ${o.idleSec} s, every 50 ms during the job; VmHWM is the ` +
            "kernel's own peak since the process started).",
        ),
        table(
          ["", "value"],
          [
            ["idle RSS (median while heartbeating and long-polling)", mib(idleRss)],
            ["peak RSS sampled during the job", mib(peakRss)],
            ["VmHWM (peak RSS since start) after the job", mib(hwm)],
            ["peak RSS the worker reported in the job's metrics (`worker_peak_rss_kb`)", metrics.worker_peak_rss_kb ? mib(metrics.worker_peak_rss_kb * 1024) : "–"],
            ["output size (verified in the B2 test server)", mib(stored.size)],
            ["upload stage (worker's metrics)", `${uploadSec.toFixed(1)} s (${(o.outputBytes / MiB / uploadSec).toFixed(0)} MiB/s)`],
            ["whole job, API create → succeeded", `${jobSec.toFixed(1)} s`],
          ],
        ),
      ],
    };
  } finally {
    await worker?.stop().catch(() => undefined);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}
