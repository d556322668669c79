import { readFileSync } from "node:fs";
import { HEADERS, routes, type RouteName } from "@fleet/contract";
import { z } from "zod";
import { FUZZ_INTERNAL_KEY, FUZZ_PUBLIC_KEY } from "./fuzz-app.js";
import { nestedJson } from "./hostile-payloads.js";
import type { FuzzRequest } from "./route-requests.js";

const Payload = z.union([
  z.string(),
  z.object({ base64: z.string() }),
  z.object({ nested: z.object({ depth: z.number().int().positive(), shape: z.enum(["array", "object", "mixed"]), before: z.string().optional(), after: z.string().optional() }) }),
]);

const Entry = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/),
  /** What broke, and where it was reported. */
  found: z.string().min(1),
  route: z.enum(Object.keys(routes) as [RouteName, ...RouteName[]]),
  method: z.enum(["GET", "POST", "PUT", "DELETE", "PATCH"]),
  url: z.string().startsWith("/"),
  auth: z.enum(["internal", "public", "none"]),
  contentType: z.string().optional(),
  payload: Payload.optional(),
  /** False when the request is not the route's own (a path the router cannot read). */
  matchesRoute: z.boolean().default(true),
  expect: z.object({ status: z.number().int().min(100).max(499), code: z.string().optional() }),
});
export type CorpusEntry = z.infer<typeof Entry>;

const Corpus = z.object({ about: z.string(), entries: z.array(Entry).min(1) });

export function loadRegressionCorpus(): CorpusEntry[] {
  const text = readFileSync(new URL("./regression-corpus.json", import.meta.url), "utf8");
  const { entries } = Corpus.parse(JSON.parse(text));
  const ids = new Set(entries.map((e) => e.id));
  if (ids.size !== entries.length) throw new Error("regression-corpus.json: duplicate ids");
  return entries;
}

function payloadOf(payload: CorpusEntry["payload"]): string | Buffer | undefined {
  if (payload === undefined || typeof payload === "string") return payload;
  if ("base64" in payload) return Buffer.from(payload.base64, "base64");
  const { depth, shape, before = "", after = "" } = payload.nested;
  return `${before}${nestedJson(depth, shape)}${after}`;
}

export function corpusRequest(entry: CorpusEntry): FuzzRequest {
  const payload = payloadOf(entry.payload);
  const headers: Record<string, string> =
    entry.auth === "internal" ? { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY } : entry.auth === "public" ? { [HEADERS.apiKey]: FUZZ_PUBLIC_KEY } : {};
  if (payload !== undefined) headers["content-type"] = entry.contentType ?? "application/json";
  let body: unknown;
  try {
    body = payload === undefined ? undefined : (JSON.parse(payload.toString()) as unknown);
  } catch {
    body = undefined;
  }
  return { route: entry.route, method: entry.method, url: entry.url, headers, ...(payload !== undefined ? { payload, body } : {}), auth: "valid", matchesRoute: entry.matchesRoute };
}

/** The corpus entry a failing fuzz run prints, ready to paste into regression-corpus.json. */
export function corpusEntryFor(req: FuzzRequest, res: { status: number }): string {
  const auth = req.headers[HEADERS.internalApiKey] === FUZZ_INTERNAL_KEY ? "internal" : req.headers[HEADERS.apiKey] === FUZZ_PUBLIC_KEY ? "public" : "none";
  let payload: unknown;
  if (req.payload !== undefined) {
    const bytes = Buffer.isBuffer(req.payload) ? req.payload : Buffer.from(req.payload, "utf8");
    const text = bytes.toString("utf8");
    payload = Buffer.from(text, "utf8").equals(bytes) ? text : { base64: bytes.toString("base64") };
  }
  const entry = {
    id: `${req.route.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}-CHANGE-ME`,
    found: `fuzz: answered ${res.status}`,
    route: req.route,
    method: req.method,
    url: req.url,
    auth,
    ...(req.headers["content-type"] !== undefined ? { contentType: req.headers["content-type"] } : {}),
    ...(payload !== undefined ? { payload } : {}),
    ...(req.matchesRoute ? {} : { matchesRoute: false }),
    expect: { status: 400, code: "invalid_request" },
  };
  const json = JSON.stringify(entry);
  return json.length > 20_000 ? `${json.slice(0, 20_000)}… (payload too long to print whole; reproduce with FUZZ_SEED)` : json;
}
