import type { RouteName } from "@fleet/contract";
import fc from "fast-check";
import { garbageValue, weirdString } from "./garbage.js";
import type { FuzzWorld } from "./route-requests.js";
import { urlArb } from "./urls.js";

type Body = Record<string, unknown>;

const smallJson = fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), weirdString), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
const shortText = fc.oneof(fc.string({ maxLength: 30 }), weirdString);

/** From a valid body to a broken one: one field of the wrong type, one missing, extra fields, or no object at all. */
function mutated(valid: fc.Arbitrary<Body>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    {
      weight: 4,
      arbitrary: fc.tuple(valid, fc.nat(), garbageValue).map(([body, i, value]) => {
        const keys = Object.keys(body);
        const key = keys.length > 0 ? (keys[i % keys.length] ?? "x") : "x";
        return { ...body, [key]: value };
      }),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(valid, fc.nat()).map(([body, i]) => {
        const keys = Object.keys(body);
        const copy = { ...body };
        if (keys.length > 0) delete copy[keys[i % keys.length] ?? ""];
        return copy;
      }),
    },
    { weight: 2, arbitrary: fc.tuple(valid, fc.dictionary(weirdString, garbageValue, { minKeys: 1, maxKeys: 3 })).map(([body, extra]) => ({ ...extra, ...body })) },
    { weight: 1, arbitrary: garbageValue },
  );
}

function workerIdArb(world: FuzzWorld): fc.Arbitrary<string> {
  return fc.oneof(world.workerIds.length > 0 ? fc.constantFrom(...world.workerIds) : fc.constant("fuzz-w1"), fc.stringMatching(/^[A-Za-z0-9._:@-]{1,40}$/));
}

function bufferJobIdArb(world: FuzzWorld): fc.Arbitrary<string> {
  return world.bufferJobIds.length > 0 ? fc.oneof(fc.constantFrom(...world.bufferJobIds), fc.uuid()) : fc.uuid();
}

const errorInfo = fc.record(
  {
    error_type: fc.constantFrom("media_error", "download_error", "processing_error", "unknown_error"),
    stage: fc.constantFrom("download", "validation", "preprocessing", "inference", "postprocessing", "upload", "report", "unknown"),
    message: shortText,
    retryable: fc.boolean(),
    details: fc.option(smallJson),
  },
  { requiredKeys: ["error_type", "stage", "message", "retryable"] },
);

function validBody(route: RouteName, world: FuzzWorld): fc.Arbitrary<Body> | null {
  switch (route) {
    case "heartbeat":
      return fc.record(
        {
          status: fc.constantFrom("idle", "busy", "draining", "error"),
          gpu_class: fc.option(fc.constantFrom("RTX 4090", "A100 80GB")),
          capacity: fc.integer({ min: 1, max: 4 }),
          error: fc.option(shortText),
          active_jobs: fc.array(bufferJobIdArb(world), { maxLength: 3 }),
          version: fc.option(fc.constantFrom("1.0.0", "fuzz")),
          engine: fc.option(fc.record({ driver: fc.constant("ffmpeg"), state: fc.constantFrom("ready", "starting", "busy", "unavailable", "error"), lip_sync: fc.boolean() })),
          system: fc.option(fc.record({ gpu_name: fc.option(shortText), disk_free_gb: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true })) })),
        },
        { requiredKeys: ["status"] },
      );
    case "claimJob":
      // wait_ms stays tiny: a valid long-poll would just hold the request, which is not what is under test.
      return fc.record({ worker_id: workerIdArb(world), wait_ms: fc.integer({ min: 0, max: 20 }) }, { requiredKeys: ["worker_id"] });
    case "reportJobStatus":
      return fc.record(
        {
          status: fc.constantFrom("succeeded", "failed", "cancelled", "released", "success"),
          error: fc.option(shortText),
          output_url: fc.option(urlArb),
          metrics: fc.option(smallJson),
          error_info: fc.option(errorInfo),
        },
        { requiredKeys: ["status"] },
      );
    case "reportProgress":
      return fc.record(
        {
          progress: fc.double({ min: 0, max: 1, noNaN: true }),
          phase: fc.option(fc.string({ maxLength: 64 })),
          metrics: fc.option(smallJson),
          worker_id: workerIdArb(world),
          buffer_job_id: fc.option(bufferJobIdArb(world)),
          status: fc.option(fc.constantFrom("running", "succeeded", "success", "failed")),
          error: fc.option(shortText),
          output_url: fc.option(urlArb),
        },
        { requiredKeys: ["progress", "worker_id"] },
      );
    case "mainHeartbeat":
      return fc.record(
        {
          status: fc.constantFrom("idle", "busy"),
          current_job_id: fc.option(fc.uuid()),
          provider: fc.option(fc.constantFrom("salad", "vast", "local")),
          gpu_class: fc.option(fc.constantFrom("RTX 4090", "A100 80GB")),
          worker_type: fc.option(fc.constantFrom("main", "transient", "expensive", "test-batch")),
          system_info: fc.option(smallJson),
        },
        { requiredKeys: ["status"] },
      );
    case "mainClaimJob":
      return fc.record(
        { worker_id: workerIdArb(world), worker_type: fc.option(fc.constantFrom("main", "expensive")), gpu_class: fc.option(shortText) },
        { requiredKeys: ["worker_id"] },
      );
    case "createJob":
      return fc.record(
        {
          video_url: urlArb,
          audio_url: urlArb,
          aspect_ratio: fc.constantFrom("9:16", "16:9", "1:1"),
          resolution: fc.constantFrom("720p", "512x512"),
          params: smallJson,
          webhook_url: fc.option(urlArb),
          metadata: fc.option(smallJson),
          priority: fc.integer({ min: -100, max: 100 }),
        },
        { requiredKeys: ["video_url", "audio_url"] },
      );
    default:
      return null;
  }
}

/** The body for one request to `route`; `undefined` sends none. Body-less routes now and then get one anyway. */
export function routeBody(route: RouteName, world: FuzzWorld): fc.Arbitrary<unknown> {
  const valid = validBody(route, world);
  if (valid) return mutated(valid);
  return fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: garbageValue });
}
