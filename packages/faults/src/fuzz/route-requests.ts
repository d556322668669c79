import { HEADERS, routes, type RouteName } from "@fleet/contract";
import fc from "fast-check";
import { FUZZ_INTERNAL_KEY, FUZZ_PUBLIC_KEY } from "./fuzz-app.js";
import { headerValue, weirdString } from "./garbage.js";
import { hostileEncodingArb, hostilePayload, PERCENT_SEGMENTS } from "./hostile-payloads.js";
import { routeBody } from "./route-bodies.js";

/** Ids that exist in the database, so requests reach past "not found" into the real paths. */
export interface FuzzWorld {
  workerIds: string[];
  jobIds: string[];
  bufferJobIds: string[];
  /** A real `next_cursor`, so cursor garbage is compared with the genuine article. */
  cursor: string | null;
}

export type AuthVariant = "valid" | "missing" | "wrong_key" | "empty_key" | "other_kind_of_key" | "key_in_wrong_case";

export interface FuzzRequest {
  route: RouteName;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  auth: AuthVariant;
  /** The body as sent, parsed back (so raw JSON with duplicate keys is judged by its effective values). */
  body?: unknown;
  /** True when method and path are the route's own, so its auth hook must run. */
  matchesRoute: boolean;
}

/** encodeURIComponent throws on lone surrogates; a client could not send them in a path anyway. */
function wellFormed(value: string): string {
  return value.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

const ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"] as const;
const OVERSIZED = JSON.stringify({ video_url: "https://media.fuzz.internal/a.mp4", metadata: { pad: "z".repeat(300 * 1024) } });

function paramArb(name: string, world: FuzzWorld): fc.Arbitrary<string> {
  const known = name === "worker_id" ? world.workerIds : name === "buffer_job_id" ? world.bufferJobIds : world.jobIds;
  const shaped =
    name === "worker_id"
      ? fc.stringMatching(/^[A-Za-z0-9._:@-]{1,40}$/)
      : fc.oneof(
          fc.uuid(),
          fc.uuid().map((u) => u.toUpperCase()),
          fc.uuid().map((u) => `{${u}}`),
          fc.uuid().map((u) => u.replaceAll("-", "")),
          fc.uuid().map((u) => `${u}0`),
          fc.constantFrom("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "1", "null"),
        );
  // "." and ".." are path segments, not values: URL normalisation removes them before routing.
  return fc
    .oneof({ weight: 3, arbitrary: known.length > 0 ? fc.constantFrom(...known) : shaped }, { weight: 2, arbitrary: shaped }, { weight: 2, arbitrary: weirdString })
    .filter((s) => s.length > 0 && s !== "." && s !== "..");
}

function queryArb(route: RouteName, world: FuzzWorld): fc.Arbitrary<string> {
  const extra = fc.dictionary(fc.constantFrom("x", "debug", "limit[]", "__proto__", "a b"), weirdString, { maxKeys: 2 });
  if (route !== "listJobs") return fc.option(extra, { freq: 4 }).map((q) => (q ? new URLSearchParams(q).toString() : ""));
  const status = fc.oneof(fc.constantFrom("queued", "running", "succeeded", "failed", "cancelled"), weirdString);
  const limit = fc.oneof(fc.integer({ min: 1, max: 200 }).map(String), fc.constantFrom("0", "-1", "201", "1.5", "1e2", "abc", "", " 5", "0x10", "99999999999999999999"));
  const cursor = fc.oneof(
    world.cursor ? fc.constant(world.cursor) : weirdString,
    weirdString,
    fc.base64String({ maxLength: 60 }),
    fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? "null").toString("base64url")),
  );
  return fc
    .tuple(fc.record({ status, limit, cursor }, { requiredKeys: [] }), extra, fc.boolean())
    .map(([q, more, repeat]) => {
      const params = new URLSearchParams({ ...q, ...(repeat ? more : {}) });
      if (repeat && q.limit !== undefined) params.append("limit", q.limit);
      return params.toString();
    });
}

function authHeaders(route: RouteName, variant: AuthVariant, pickPublic: boolean): Record<string, string> {
  const kind = routes[route].auth;
  switch (variant) {
    case "valid":
      if (kind === "internal") return { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY };
      if (kind === "public") return pickPublic ? { [HEADERS.apiKey]: FUZZ_PUBLIC_KEY } : { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY };
      return {};
    case "missing":
      return {};
    case "wrong_key":
      return { [HEADERS.internalApiKey]: "fuzz-internal-key-0002", [HEADERS.apiKey]: "fuzz-public-key-0002" };
    case "empty_key":
      return { [HEADERS.internalApiKey]: "", [HEADERS.apiKey]: "" };
    case "other_kind_of_key":
      // The public key where the internal one belongs (and vice versa): never interchangeable that way round.
      return kind === "internal" ? { [HEADERS.internalApiKey]: FUZZ_PUBLIC_KEY, [HEADERS.apiKey]: FUZZ_PUBLIC_KEY } : { [HEADERS.apiKey]: FUZZ_INTERNAL_KEY };
    case "key_in_wrong_case":
      return { [HEADERS.internalApiKey]: FUZZ_INTERNAL_KEY.toUpperCase(), [HEADERS.apiKey]: FUZZ_PUBLIC_KEY.toUpperCase() };
  }
}

/** The body as the server's JSON parser sees it (duplicate keys: the last wins), or undefined. */
function asServerReadsIt(payload: string | Buffer): unknown {
  try {
    return JSON.parse(payload.toString()) as unknown;
  } catch {
    return undefined;
  }
}

/** How the body travels: mostly JSON, sometimes broken JSON, the wrong content type, nothing, or too much. */
const encodingArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ kind: "json" as const, contentType: "application/json" }) },
  { weight: 1, arbitrary: fc.constantFrom("application/json; charset=utf-8", "APPLICATION/JSON", "application/json; charset=utf-16", "application/json; charset=latin1").map((contentType) => ({ kind: "json" as const, contentType })) },
  { weight: 2, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/jsonx", "application/octet-stream", "").map((contentType) => ({ kind: "json" as const, contentType })) },
  { weight: 2, arbitrary: fc.constant({ kind: "broken" as const, contentType: "application/json" }) },
  { weight: 1, arbitrary: fc.constant({ kind: "oversized" as const, contentType: "application/json" }) },
  { weight: 4, arbitrary: fc.constant({ kind: "hostile" as const, contentType: "application/json" }) },
);

const brokenJson = fc.oneof(
  fc.constantFrom("{", "}", "[1,", '{"status":}', "nul", "{'a':1}", '{"a":1}{"b":2}', '{"__proto__":{"polluted":true},"status":"idle"}', '{"constructor":{"prototype":{"x":1}}}', "\uFEFF{}", '"\\ud800"', "1".repeat(5000)),
  // Valid JSON that JSON.parse bends: numbers past float range, duplicate keys (last one wins).
  fc.constantFrom(
    '{"status":"idle","capacity":1e400}',
    '{"worker_id":"fuzz-w1","wait_ms":1e400}',
    '{"progress":-1e-400,"worker_id":"fuzz-w1"}',
    '{"status":"idle","status":"offline"}',
    '{"status":"succeeded","output_url":"https://media.fuzz.internal/o.mp4","output_url":null}',
    '{"video_url":"https://media.fuzz.internal/a.mp4","audio_url":"https://media.fuzz.internal/b.wav","priority":1e400}',
    '{"video_url":"https://media.fuzz.internal/a.mp4","audio_url":"https://media.fuzz.internal/b.wav","video_url":"http://127.0.0.1/a.mp4"}',
  ),
  fc.string({ unit: "binary", maxLength: 50 }),
);

export interface RequestOptions {
  route: RouteName;
  world: FuzzWorld;
  /** `valid` only, or every way of getting the key wrong. */
  auth: "valid" | "invalid";
}

/** Requests against one route of the contract, from almost right to garbage. */
export function requestArb({ route, world, auth }: RequestOptions): fc.Arbitrary<FuzzRequest> {
  const def = routes[route];
  const params = (def.path.match(/:([a-z_]+)/g) ?? []).map((p) => p.slice(1));
  const authArb: fc.Arbitrary<AuthVariant> =
    auth === "valid" ? fc.constant("valid") : fc.constantFrom("missing", "wrong_key", "empty_key", "other_kind_of_key", "key_in_wrong_case");
  // Keys must reach the auth check for the strict 401 property: a well-formed path, the route's method.
  const method = auth === "valid" ? fc.oneof({ weight: 12, arbitrary: fc.constant(def.method) }, { weight: 1, arbitrary: fc.constantFrom(...ALL_METHODS) }) : fc.constant(def.method);
  const pathArbs = params.map((p) => (auth === "valid" ? paramArb(p, world) : paramArb(p, world).filter((v) => v.length <= 100)));
  return fc
    .record({
      method,
      path: fc.tuple(...pathArbs),
      // Now and then a path whose params are not URL-encoded at all.
      rawPath: auth === "valid" ? fc.integer({ min: 0, max: 9 }).map((n) => n === 0) : fc.constant(false),
      query: queryArb(route, world),
      authVariant: authArb,
      pickPublic: fc.boolean(),
      body: routeBody(route, world),
      encoding: encodingArb,
      broken: brokenJson,
      hostile: hostileEncodingArb,
      // Now and then one path segment sent exactly as a hostile client would write it.
      percentSegment: auth === "valid" ? fc.option(fc.constantFrom(...PERCENT_SEGMENTS), { freq: 8 }) : fc.constant(null),
      idempotencyKey: fc.option(headerValue, { freq: 2 }),
      requestId: fc.option(headerValue, { freq: 4 }),
    })
    .map((r) => {
      let path: string = def.path;
      params.forEach((name, i) => {
        const value = r.path[i] ?? "";
        path = path.replace(`:${name}`, r.rawPath ? value : encodeURIComponent(wellFormed(value)));
      });
      const [firstParam] = params;
      if (r.percentSegment !== null) path = firstParam !== undefined ? def.path.replace(`:${firstParam}`, r.percentSegment).replace(/:[a-z_]+/g, "x") : `${path}/${r.percentSegment}`;
      const headers: Record<string, string> = { ...authHeaders(route, r.authVariant, r.pickPublic) };
      if (r.idempotencyKey !== null && route === "createJob") headers[HEADERS.idempotencyKey] = r.idempotencyKey;
      if (r.requestId !== null) headers[HEADERS.requestId] = r.requestId;
      let payload: string | Buffer | undefined;
      if (r.body !== undefined) {
        if (r.encoding.contentType) headers["content-type"] = r.encoding.contentType;
        const kind = r.encoding.kind;
        payload = kind === "broken" ? r.broken : kind === "oversized" ? OVERSIZED : kind === "hostile" ? hostilePayload(r.body, r.hostile) : JSON.stringify(r.body);
      }
      return {
        route,
        method: r.method,
        url: r.query ? `${path}?${r.query}` : path,
        headers,
        ...(payload !== undefined ? { payload } : {}),
        auth: r.authVariant,
        ...(payload !== undefined ? { body: asServerReadsIt(payload) } : {}),
        matchesRoute: r.method === def.method && !r.rawPath && r.percentSegment === null,
      };
    });
}
