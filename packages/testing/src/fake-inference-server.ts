import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { GenerateRequest, PredictionRequest } from "@fleet/contract";
import type { InferenceHealth, Prediction } from "@fleet/contract";
import { runGenerate } from "./fake-generate.js";
import { FAKE_MODES, resolveBehaviour } from "./fake-inference-modes.js";
import type { FakeDefaults, FakeMode } from "./fake-inference-modes.js";
import { FakePrediction } from "./fake-prediction.js";
import { closeServer, listen, readJsonBody, sendJson, sleep } from "./http-util.js";

export { FAKE_MODES };
export type { FakeMode };

export interface FakeInferenceServerOptions {
  /** Server-wide mode; a request's `params.fake` overrides it for that run. Default "ok". */
  mode?: FakeMode;
  /** Run time of every mode but `slow`. Default 300 ms. */
  durationMs?: number;
  /** Run time of `slow`. Default 5000 ms. */
  slowDurationMs?: number;
  /** Progress tick. Default 50 ms. */
  tickMs?: number;
  /** /health-check says STARTING until this long after start. Default 0. */
  readyAfterMs?: number;
  /** /health-check says SETUP_FAILED for good. */
  setupFailed?: boolean;
  /** Predictions at once; beyond it PUT answers 409 and health says BUSY. Default unlimited. */
  concurrency?: number;
  /** Where POST /generate writes outputs. Default: a temp dir removed by close(). */
  outputDir?: string;
  /** Base of /generate's output_url. Default: this server's own `/outputs`, which serves outputDir. */
  outputBaseUrl?: string;
  /**
   * The shared volume as the container sees it (`from`) and where it really is (`to`), for
   * workers whose WORK_DIR is mounted elsewhere in the container. Default: the same paths.
   */
  pathMap?: { from: string; to: string };
  /** Like the original image (its handler blocked the event loop): GET /hc gets no answer while /generate runs. */
  blockHcWhileGenerating?: boolean;
  /** `gpu_class` in /generate metrics. Default "fake-cpu". */
  gpuClass?: string;
}

export interface FakeInferenceRequest {
  method: string;
  path: string;
  body: unknown;
  status: number | null;
  at: number;
}

export interface FakeInferenceServer {
  url: string;
  outputDir: string;
  /** Changes the mode of runs started from now on (`durationMs` sets that mode's run time). */
  setMode(mode: FakeMode, opts?: { durationMs?: number }): void;
  /** Forces the health status; null returns to the automatic one. */
  setHealth(status: InferenceHealth["status"] | null): void;
  readonly requests: readonly FakeInferenceRequest[];
  prediction(id: string): Prediction | undefined;
  predictions(): Prediction[];
  /** How many runs actually started: an idempotent re-PUT does not add one. */
  runsStarted(): number;
  /** Polls until the prediction reaches one of `statuses` (terminal ones by default). */
  waitForPrediction(id: string, statuses?: Prediction["status"][], timeoutMs?: number): Promise<Prediction>;
  close(): Promise<void>;
}

const TERMINAL: Prediction["status"][] = ["succeeded", "failed", "canceled"];

/**
 * A stand-in for the CUDA inference container, speaking both Fleet's `http` contract
 * (`/health-check`, `/predictions/{id}`) and the original image's `/hc` + `/generate`, and
 * making real videos with ffmpeg so everything downstream sees real media.
 */
export async function startFakeInferenceServer(opts: FakeInferenceServerOptions = {}): Promise<FakeInferenceServer> {
  const ownsOutputDir = opts.outputDir === undefined;
  const outputDir = opts.outputDir ?? (await mkdtemp(join(tmpdir(), "fleet-fake-inference-")));
  await mkdir(outputDir, { recursive: true });
  const defaults: FakeDefaults = {
    mode: opts.mode ?? "ok",
    durationMs: opts.durationMs ?? 300,
    slowDurationMs: opts.slowDurationMs ?? 5000,
  };
  const tickMs = opts.tickMs ?? 50;
  const concurrency = opts.concurrency ?? Infinity;
  const readyAt = Date.now() + (opts.readyAfterMs ?? 0);
  let forcedHealth: InferenceHealth["status"] | null = opts.setupFailed ? "SETUP_FAILED" : null;
  const predictions = new Map<string, FakePrediction>();
  const generating = new Set<AbortController>();
  /** /hc requests held while /generate runs (blockHcWhileGenerating). */
  let heldHc: (() => void)[] = [];
  const releaseHc = (): void => {
    for (const release of heldHc) release();
    heldHc = [];
  };
  const requests: FakeInferenceRequest[] = [];
  let outputBaseUrl = opts.outputBaseUrl ?? "";

  const map = opts.pathMap;
  const toHostPath = (p: string): string => (map && p.startsWith(map.from) ? map.to + p.slice(map.from.length) : p);
  const running = (): number => [...predictions.values()].filter((p) => !p.terminal).length;
  function healthStatus(): InferenceHealth["status"] {
    if (forcedHealth) return forcedHealth;
    if (Date.now() < readyAt) return "STARTING";
    return running() >= concurrency ? "BUSY" : "READY";
  }

  function handlePut(id: string, body: unknown, res: ServerResponse): void {
    const known = predictions.get(id);
    if (known) return sendJson(res, 200, known.view());
    const parsed = PredictionRequest.safeParse(body);
    if (!parsed.success) return sendJson(res, 422, { detail: parsed.error.issues });
    const health = healthStatus();
    if (health === "STARTING" || health === "SETUP_FAILED") return sendJson(res, 503, { detail: `not ready: ${health}` });
    if (running() >= concurrency) return sendJson(res, 409, { detail: "Already running a prediction" });
    const behaviour = resolveBehaviour(parsed.data.input.params, defaults);
    const p = new FakePrediction(id, parsed.data.input, behaviour, tickMs, toHostPath);
    predictions.set(id, p);
    sendJson(res, 202, p.view());
  }

  async function handleGenerate(body: unknown, res: ServerResponse): Promise<void> {
    const parsed = GenerateRequest.safeParse(body);
    // FastAPI's own validation body: no `status` field, as the original image answers.
    if (!parsed.success) return sendJson(res, 422, { detail: parsed.error.issues.map((i) => ({ loc: ["body", ...i.path], msg: i.message, type: i.code })) });
    const ac = new AbortController();
    generating.add(ac);
    res.on("close", () => {
      if (!res.writableFinished) ac.abort(new Error("client went away"));
    });
    try {
      const out = await runGenerate({ outputDir, outputBaseUrl, gpuClass: opts.gpuClass ?? "fake-cpu", defaults }, parsed.data, ac.signal);
      if (out.status !== null && !res.destroyed) sendJson(res, out.status, out.body);
    } finally {
      generating.delete(ac);
      if (generating.size === 0) releaseHc();
    }
  }

  async function serveOutput(name: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const file = join(outputDir, name);
    const info = name.startsWith(".") || name.includes("/") ? null : await stat(file).catch(() => null);
    if (!info?.isFile()) return sendJson(res, 404, { detail: "Not Found" });
    res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": info.size });
    if (req.method === "HEAD") return void res.end();
    await pipeline(createReadStream(file), res);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: FakeInferenceRequest): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const method = req.method ?? "GET";
    const body = method === "PUT" || method === "POST" ? await readJsonBody(req) : undefined;
    record.body = body;
    const pred = /^\/predictions\/([^/]+)(\/cancel)?$/.exec(path);
    if (method === "GET" && path === "/health-check") {
      const status = healthStatus();
      const health: InferenceHealth = {
        status, engine: "fake-inference", version: "0.0.0-test", lip_sync: false,
        detail: status === "SETUP_FAILED" ? "fake setup failure" : null, gpu: null,
      };
      return sendJson(res, 200, health);
    }
    if (method === "GET" && path === "/hc") {
      if (opts.blockHcWhileGenerating && generating.size > 0) await new Promise<void>((resolve) => heldHc.push(resolve));
      return sendJson(res, 200, { status: "ok" });
    }
    if (method === "POST" && path === "/generate") return handleGenerate(body, res);
    if ((method === "GET" || method === "HEAD") && path.startsWith("/outputs/")) {
      return serveOutput(decodeURIComponent(path.slice("/outputs/".length)), req, res);
    }
    if (pred?.[1]) {
      const id = decodeURIComponent(pred[1]);
      if (method === "PUT" && !pred[2]) return handlePut(id, body, res);
      const p = predictions.get(id);
      if (method === "GET" && !pred[2]) return p ? sendJson(res, 200, p.view()) : sendJson(res, 404, { detail: "prediction not found" });
      if (method === "POST" && pred[2]) {
        if (!p) return sendJson(res, 404, { detail: "prediction not found" });
        p.cancel();
        return sendJson(res, 200, p.view());
      }
    }
    sendJson(res, 404, { detail: "Not Found" });
  }

  const server = createServer((req, res) => {
    const record: FakeInferenceRequest = { method: req.method ?? "", path: req.url ?? "", body: undefined, status: null, at: Date.now() };
    requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));
    handle(req, res, record).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      sendJson(res, 500, { detail: err instanceof Error ? err.message : String(err) });
    });
  });
  const url = await listen(server);
  if (!outputBaseUrl) outputBaseUrl = `${url}/outputs`;

  return {
    url,
    outputDir,
    setMode(mode, o = {}) {
      defaults.mode = mode;
      if (o.durationMs !== undefined) {
        if (mode === "slow") defaults.slowDurationMs = o.durationMs;
        else defaults.durationMs = o.durationMs;
      }
    },
    setHealth: (status) => void (forcedHealth = status),
    requests,
    prediction: (id) => predictions.get(id)?.view(),
    predictions: () => [...predictions.values()].map((p) => p.view()),
    runsStarted: () => predictions.size,
    async waitForPrediction(id, statuses = TERMINAL, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const p = predictions.get(id)?.view();
        if (p && statuses.includes(p.status)) return p;
        if (Date.now() > deadline) throw new Error(`prediction ${id} not in ${statuses.join("/")} after ${timeoutMs} ms (now ${p?.status ?? "unknown"})`);
        await sleep(20);
      }
    },
    async close() {
      for (const p of predictions.values()) p.cancel();
      for (const ac of generating) ac.abort(new Error("server closing"));
      releaseHc();
      await Promise.all([...predictions.values()].map((p) => p.done));
      await closeServer(server);
      if (ownsOutputDir) await rm(outputDir, { recursive: true, force: true });
    },
  };
}
