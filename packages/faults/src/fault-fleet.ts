import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startB2TestServer, type B2TestServer } from "@fleet/testing/b2-test-server";
import { startFileServer, type FileServer } from "@fleet/testing/file-server";
import { makeCorruptFile, makeTestAudio, makeTestVideo } from "@fleet/testing/media";
import { startOrchestratorProcess, type OrchestratorProcess } from "@fleet/testing/orchestrator-process";
import { startThrowawayPostgres, type ThrowawayPostgres } from "@fleet/testing/postgres-cluster";
import { startWorkerProcess, type WorkerProcess } from "@fleet/testing/worker-process";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.js";

export interface FaultFleetSettings {
  workers: number;
  /** Orchestrator variables on top of the launcher's test defaults. */
  orchestratorEnv: Record<string, string>;
  /** Worker variables; the fleet adds the orchestrator, key, id, engine and B2 ones. */
  workerEnv: Record<string, string>;
  b2Prefix: string;
  /** Clip length and size: the ffmpeg work per job. */
  media: { seconds: number; width: number; height: number };
}

/** A process that ended without the suite asking it to. */
export interface UnexpectedExit {
  what: string;
  code: number | null;
  lastLines: string[];
}

export interface FaultFleet {
  readonly pg: ThrowawayPostgres;
  readonly b2: B2TestServer;
  readonly files: FileServer;
  readonly proxy: FaultProxy;
  orchestrator(): OrchestratorProcess;
  /** Workers alive now, by id. */
  workers(): ReadonlyMap<string, WorkerProcess>;
  internalApiKey: string;
  publicApiKey: string;
  media: { videoUrl: string; audioUrl: string; corruptVideoUrl: string };
  /** Starts one more worker with a fresh id. */
  addWorker(): Promise<string>;
  /** SIGKILL: a crashed GPU box. */
  killWorker(id: string): Promise<void>;
  restartOrchestrator(mode: "graceful" | "crash"): Promise<void>;
  /** An immediate (crash) stop, `downMs` of outage, start again. */
  restartPostgres(downMs: number): Promise<void>;
  /** SIGTERM every worker (they drain and say goodbye). */
  stopWorkers(): Promise<void>;
  unexpectedExits: UnexpectedExit[];
  /** Log lines of every orchestrator incarnation so far, oldest first. */
  orchestratorLogs(): string[];
  /** Stops everything it started, whatever state it is in. */
  close(): Promise<void>;
}

/**
 * Everything the fault suite runs, on loopback: a throwaway PostgreSQL cluster (never the shared
 * server), the built orchestrator on it, the fault proxy in front of it, the B2 test server, a
 * file server with tiny clips, and CPU workers uploading to B2 through the proxy.
 */
export async function startFaultFleet(settings: FaultFleetSettings): Promise<FaultFleet> {
  const started: { close: () => Promise<unknown> }[] = [];
  const livePids = new Set<number>();
  // If the test process dies mid-run, do not leave orchestrators and workers behind.
  const killLeftovers = () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.once("exit", killLeftovers);
  const closeAll = async () => {
    const errors: unknown[] = [];
    for (const part of started.reverse()) {
      try {
        await part.close();
      } catch (err) {
        errors.push(err);
      }
    }
    process.off("exit", killLeftovers);
    if (errors.length > 0) throw new AggregateError(errors, "fault fleet did not close cleanly");
  };

  try {
    const mediaDir = await mkdtemp(join(tmpdir(), "fleet-faults-media-"));
    started.push({ close: () => rm(mediaDir, { recursive: true, force: true }) });
    const { seconds, width, height } = settings.media;
    await makeTestVideo(join(mediaDir, "avatar.mp4"), { seconds, width, height, fps: 10 });
    await makeTestAudio(join(mediaDir, "voice.wav"), { seconds });
    await makeCorruptFile(join(mediaDir, "corrupt.mp4"));
    const files = await startFileServer(mediaDir);
    started.push(files);

    const pg = await startThrowawayPostgres();
    started.push({ close: () => pg.destroy() });
    const b2 = await startB2TestServer();
    started.push(b2);

    const internalApiKey = `internal-${randomBytes(12).toString("hex")}`;
    const publicApiKey = `public-${randomBytes(12).toString("hex")}`;
    const unexpectedExits: UnexpectedExit[] = [];
    const retiredLogs: string[] = [];
    const expectedExit = new WeakSet<object>();

    let closing = false;
    // Filled once the proxy exists; an orchestrator that dies before that needs no re-targeting.
    const front: { proxy?: FaultProxy } = {};
    let orchestrator: OrchestratorProcess;
    const launchOrchestrator = async (): Promise<OrchestratorProcess> => {
      const o = await startOrchestratorProcess({ databaseUrl: pg.url, internalApiKey, publicApiKey, env: settings.orchestratorEnv });
      livePids.add(o.pid);
      void o.exited.then((code) => {
        livePids.delete(o.pid);
        if (expectedExit.has(o)) return;
        unexpectedExits.push({ what: `orchestrator pid ${o.pid}`, code, lastLines: o.logs().slice(-40) });
        retiredLogs.push(...o.logs());
        // Like a container restart policy: bring it back, so the run still shows what happens next.
        if (!closing) void relaunchOrchestrator();
      });
      return o;
    };
    const relaunchOrchestrator = async (): Promise<void> => {
      while (!closing) {
        try {
          orchestrator = await launchOrchestrator();
          front.proxy?.setTarget(orchestrator.url);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 1_000));
        }
      }
    };
    orchestrator = await launchOrchestrator();
    started.push({
      close: async () => {
        closing = true;
        expectedExit.add(orchestrator);
        await orchestrator.stop();
      },
    });

    const faultProxy = await startFaultProxy(orchestrator.url);
    front.proxy = faultProxy;
    started.push(faultProxy);

    const workers = new Map<string, WorkerProcess>();
    const runTag = randomBytes(3).toString("hex");
    let nextWorker = 1;
    const addWorker = async (): Promise<string> => {
      const id = `fault-${runTag}-w${nextWorker++}`;
      const w = await startWorkerProcess({
        orchestratorUrl: faultProxy.url,
        internalApiKey,
        workerId: id,
        env: {
          INFERENCE_DRIVER: "ffmpeg",
          STORAGE: "b2",
          ...b2.env(),
          B2_PREFIX: settings.b2Prefix,
          ALLOW_PRIVATE_NETWORK_URLS: "true",
          ...settings.workerEnv,
        },
      });
      livePids.add(w.pid);
      workers.set(id, w);
      void w.exited.then((code) => {
        livePids.delete(w.pid);
        workers.delete(id);
        if (expectedExit.has(w)) return;
        unexpectedExits.push({ what: `worker ${id}`, code, lastLines: w.logs().slice(-40) });
        if (!closing) void addWorker().catch(() => undefined);
      });
      return id;
    };
    const stopWorkers = async () => {
      await Promise.all(
        [...workers.values()].map((w) => {
          expectedExit.add(w);
          return w.stop("SIGTERM", { killAfterMs: 20_000 });
        }),
      );
    };
    started.push({
      close: async () => {
        closing = true;
        for (const w of workers.values()) expectedExit.add(w);
        await Promise.all([...workers.values()].map((w) => w.kill()));
      },
    });
    await Promise.all(Array.from({ length: settings.workers }, () => addWorker()));

    return {
      pg,
      b2,
      files,
      proxy: faultProxy,
      orchestrator: () => orchestrator,
      workers: () => workers,
      internalApiKey,
      publicApiKey,
      media: { videoUrl: files.urlFor("avatar.mp4"), audioUrl: files.urlFor("voice.wav"), corruptVideoUrl: files.urlFor("corrupt.mp4") },
      addWorker,
      async killWorker(id) {
        const w = workers.get(id);
        if (!w) return;
        expectedExit.add(w);
        await w.kill();
      },
      async restartOrchestrator(mode) {
        const old = orchestrator;
        expectedExit.add(old);
        if (mode === "crash") await old.kill();
        else await old.stop("SIGTERM");
        retiredLogs.push(...old.logs());
        orchestrator = await launchOrchestrator();
        faultProxy.setTarget(orchestrator.url);
      },
      async restartPostgres(downMs) {
        await pg.stop("immediate");
        await new Promise((r) => setTimeout(r, downMs));
        await pg.start();
      },
      stopWorkers,
      unexpectedExits,
      orchestratorLogs: () => [...retiredLogs, ...orchestrator.logs()],
      close: closeAll,
    };
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
}
