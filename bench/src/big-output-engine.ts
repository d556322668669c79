import { link, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PredictionRequest, type Prediction } from "@fleet/contract";

export interface BigOutputEngine {
  url: string;
  predictions(): number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
}

/**
 * An inference engine for the memory benchmark, speaking Fleet's `http` contract: every
 * prediction "produces" `outputFile` at once by hard-linking it to the requested output path, so
 * the worker's upload of a 1 GiB output is measured without spending minutes of CPU making one.
 * (Same filesystem as the worker's WORK_DIR; both live under the temp dir.)
 */
export async function startBigOutputEngine(outputFile: string): Promise<BigOutputEngine> {
  const done = new Map<string, Prediction>();
  const server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? "/";
      if (req.method === "GET" && url === "/health-check") {
        return send(res, 200, { status: "READY", engine: "bench-big-output", lip_sync: false, detail: "benchmark engine: hard-links a prepared output" });
      }
      const m = /^\/predictions\/([^/]+)(\/cancel)?$/.exec(url);
      if (!m?.[1]) return send(res, 404, { detail: "not found" });
      const id = decodeURIComponent(m[1]);
      if (req.method === "PUT" && !m[2]) {
        const existing = done.get(id);
        if (existing) return send(res, 200, existing);
        const parsed = PredictionRequest.safeParse(await readJson(req));
        if (!parsed.success) return send(res, 422, { detail: parsed.error.message });
        const out = parsed.data.input.output_path;
        await rm(out, { force: true });
        await link(outputFile, out);
        const p: Prediction = { id, status: "succeeded", progress: 1, phase: "done", output: { video_path: out }, metrics: { engine: "bench-big-output" } };
        done.set(id, p);
        return send(res, 200, p);
      }
      if (req.method === "GET" && !m[2]) return done.has(id) ? send(res, 200, done.get(id)) : send(res, 404, { detail: "unknown prediction" });
      if (req.method === "POST" && m[2]) return send(res, 200, done.get(id) ?? { id, status: "canceled", progress: 0 });
      return send(res, 405, { detail: "method not allowed" });
    })().catch((err: unknown) => send(res, 500, { detail: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    predictions: () => done.size,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
