import { copyFile, mkdir, rename, stat, writeFile, access, constants } from "node:fs/promises";
import path from "node:path";
import { checkStorageKey, cleanPrefix, encodeKey, type OutputStorage, type StoredObject } from "./output-storage.js";

/**
 * The development store: a directory, served by the worker's own HTTP server under /outputs/,
 * so an output URL is playable without any cloud account.
 */
export function createLocalStorage(opts: { dir: string; baseUrl: () => string; prefix?: string }): OutputStorage {
  const prefix = cleanPrefix(opts.prefix ?? "avatar/outputs");
  const target = (key: string) => {
    checkStorageKey(prefix, key);
    const file = path.resolve(opts.dir, key);
    if (!file.startsWith(path.resolve(opts.dir) + path.sep)) throw new Error(`storage key escapes the output directory: ${key}`);
    return file;
  };
  const urlFor = (key: string) => `${opts.baseUrl()}/${encodeKey(key)}`;

  return {
    kind: "local",
    prefix,
    async check() {
      await mkdir(opts.dir, { recursive: true });
      await access(opts.dir, constants.W_OK);
    },
    async putFile({ filePath, key }) {
      const file = target(key);
      await mkdir(path.dirname(file), { recursive: true });
      // Copy then rename: a reader never sees a half-written output.
      const tmp = `${file}.partial`;
      await copyFile(filePath, tmp);
      await rename(tmp, file);
      const { size } = await stat(file);
      return { key, url: urlFor(key), bytes: size, sha1: null } satisfies StoredObject;
    },
    async putJson({ key, value }) {
      const file = target(key);
      await mkdir(path.dirname(file), { recursive: true });
      const body = JSON.stringify(value, null, 2);
      await writeFile(file, body);
      return { key, url: urlFor(key), bytes: Buffer.byteLength(body), sha1: null };
    },
    async close() {},
  };
}
