// The uploading process of upload-memory.mjs: the worker's own B2 storage from dist/, nothing
// else, so its peak RSS is the upload path's.
/* global process, console, AbortController */
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const { createB2Storage } = await import(path.join(here, "../dist/storage/b2-storage.js"));
const { createLogger } = await import(path.join(here, "../dist/logger.js"));
const { loadConfig } = await import(path.join(here, "../dist/config.js"));

const [file, partMiB] = process.argv.slice(2);
// Settings come through loadConfig exactly as the worker reads them (B2_* from the environment).
const config = loadConfig({ ...process.env, STORAGE: "b2", B2_PREFIX: "bench", B2_PART_SIZE_MB: partMiB, B2_LARGE_FILE_THRESHOLD_MB: partMiB });
const storage = createB2Storage({ settings: config.storage.b2, log: createLogger({ level: "warn" }) });
const started = Date.now();
await storage.putFile({ filePath: file, key: `bench/${path.basename(file)}`, contentType: "video/mp4", signal: new AbortController().signal });
console.log(JSON.stringify({ seconds: (Date.now() - started) / 1000, peakRssMiB: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10 }));
