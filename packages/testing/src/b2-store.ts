import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";

/** One stored file version, as B2 describes it. */
export interface B2StoredObject {
  fileId: string;
  fileName: string;
  bucketId: string;
  size: number;
  /** SHA-1 of the stored bytes, always computed by the server (B2 itself says "none" for large files). */
  sha1: string;
  /** What B2's API reports as contentSha1: the hex, "none" for large files, "unverified:<hex>" for do_not_verify. */
  contentSha1: string;
  contentType: string;
  fileInfo: Record<string, string>;
  uploadTimestamp: number;
  action: "upload";
  /** Where the bytes are on disk. */
  path: string;
}

export interface B2Part {
  partNumber: number;
  size: number;
  sha1: string;
  path: string;
  uploadTimestamp: number;
}

export interface B2LargeFile {
  fileId: string;
  fileName: string;
  bucketId: string;
  contentType: string;
  fileInfo: Record<string, string>;
  uploadTimestamp: number;
  parts: Map<number, B2Part>;
  dir: string;
}

export class B2StoreError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  mp4: "video/mp4",
  mov: "video/quicktime",
  webm: "video/webm",
  wav: "audio/x-wav",
  mp3: "audio/mpeg",
  json: "application/json",
  txt: "text/plain",
  png: "image/png",
  jpg: "image/jpeg",
};

/** B2 picks the type from the extension when the client sends b2/x-auto. */
export function resolveContentType(declared: string | undefined, fileName: string): string {
  if (declared && declared !== "b2/x-auto") return declared;
  const ext = fileName.split(".").pop()?.toLowerCase() ?? "";
  return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

/** B2's file name rules, the subset a client can plausibly break. */
export function checkFileName(name: string): string | null {
  if (name.length === 0) return "File name must not be empty";
  if (Buffer.byteLength(name, "utf8") > 1024) return "File names must not exceed 1024 bytes";
  if (name.startsWith("/")) return "File names must not start with '/'";
  if (name.endsWith("/")) return "File names must not end with '/'";
  if (name.includes("//")) return "File names must not contain '//'";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return "File names must not contain control characters";
  return null;
}

/**
 * Files on disk in a temp dir; metadata in memory (one test's worth). Like B2, every upload of a
 * name is kept as a new version: `objects` holds the latest of each name (what a download by name
 * serves), `versions` all of them, so a test can tell one upload from two.
 */
export class B2Store {
  readonly objects = new Map<string, B2StoredObject>();
  /** Every version of every name, oldest first. */
  readonly versions: B2StoredObject[] = [];
  readonly largeFiles = new Map<string, B2LargeFile>();
  private seq = 0;

  constructor(
    readonly dir: string,
    readonly bucketId: string,
  ) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, "incoming"), { recursive: true });
    await mkdir(join(this.dir, "objects"), { recursive: true });
    await mkdir(join(this.dir, "large"), { recursive: true });
  }

  newFileId(): string {
    this.seq += 1;
    return `4_z${this.bucketId}_f${randomBytes(8).toString("hex")}_d${Date.now()}_m${this.seq}`;
  }

  incomingPath(): string {
    return join(this.dir, "incoming", `${Date.now()}-${randomBytes(6).toString("hex")}`);
  }

  async commitUpload(obj: Omit<B2StoredObject, "path" | "action">, incoming: string): Promise<B2StoredObject> {
    const path = join(this.dir, "objects", obj.fileId);
    await rename(incoming, path);
    return this.addVersion({ ...obj, path, action: "upload" });
  }

  private addVersion(obj: B2StoredObject): B2StoredObject {
    this.versions.push(obj);
    this.objects.set(obj.fileName, obj);
    return obj;
  }

  async startLargeFile(fileName: string, contentType: string, fileInfo: Record<string, string>): Promise<B2LargeFile> {
    const fileId = this.newFileId();
    const dir = join(this.dir, "large", fileId);
    await mkdir(dir, { recursive: true });
    const lf: B2LargeFile = {
      fileId, fileName, bucketId: this.bucketId, contentType, fileInfo,
      uploadTimestamp: Date.now(), parts: new Map(), dir,
    };
    this.largeFiles.set(fileId, lf);
    return lf;
  }

  largeFile(fileId: unknown): B2LargeFile {
    const lf = typeof fileId === "string" ? this.largeFiles.get(fileId) : undefined;
    if (!lf) throw new B2StoreError(400, "bad_request", `No active upload for: ${String(fileId)}`);
    return lf;
  }

  async commitPart(lf: B2LargeFile, part: Omit<B2Part, "path">, incoming: string): Promise<B2Part> {
    const path = join(lf.dir, String(part.partNumber));
    await rename(incoming, path);
    const stored = { ...part, path };
    lf.parts.set(part.partNumber, stored);
    return stored;
  }

  /** B2's checks: parts 1..n all present, SHA-1s as listed, every part but the last ≥ the minimum. */
  async finishLargeFile(fileId: unknown, partSha1Array: unknown, minPartSize: number): Promise<B2StoredObject> {
    const lf = this.largeFile(fileId);
    if (!Array.isArray(partSha1Array) || partSha1Array.some((s) => typeof s !== "string")) {
      throw new B2StoreError(400, "bad_request", "partSha1Array must be an array of strings");
    }
    const sha1s = partSha1Array as string[];
    if (sha1s.length < 2) throw new B2StoreError(400, "bad_request", "large files must have at least 2 parts");
    const parts: B2Part[] = [];
    for (let n = 1; n <= sha1s.length; n += 1) {
      const part = lf.parts.get(n);
      if (!part) throw new B2StoreError(400, "bad_request", `Part number ${n} has not been uploaded`);
      if (part.sha1 !== sha1s[n - 1]?.toLowerCase()) {
        throw new B2StoreError(400, "bad_request", `Sha1 for part ${n} does not match: ${sha1s[n - 1]}`);
      }
      if (n < sha1s.length && part.size < minPartSize) {
        throw new B2StoreError(400, "bad_request", `Part number ${n} is smaller than minimum part size ${minPartSize}`);
      }
      parts.push(part);
    }
    if (lf.parts.size !== sha1s.length) {
      throw new B2StoreError(400, "bad_request", `partSha1Array has ${sha1s.length} entries, ${lf.parts.size} parts uploaded`);
    }
    const path = join(this.dir, "objects", lf.fileId);
    const hash = createHash("sha1");
    let size = 0;
    const out = createWriteStream(path);
    for (const part of parts) {
      const tap = new Transform({
        transform(chunk: Buffer, _e, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(createReadStream(part.path), tap, out, { end: false });
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    this.largeFiles.delete(lf.fileId);
    await rm(lf.dir, { recursive: true, force: true });
    const largeSha1 = lf.fileInfo.large_file_sha1;
    return this.addVersion({
      fileId: lf.fileId, fileName: lf.fileName, bucketId: lf.bucketId, size, sha1: hash.digest("hex"),
      contentSha1: largeSha1 ?? "none", contentType: lf.contentType, fileInfo: lf.fileInfo,
      uploadTimestamp: lf.uploadTimestamp, action: "upload", path,
    });
  }

  async cancelLargeFile(fileId: unknown): Promise<B2LargeFile> {
    const lf = this.largeFile(fileId);
    this.largeFiles.delete(lf.fileId);
    await rm(lf.dir, { recursive: true, force: true });
    return lf;
  }

  byId(fileId: unknown): B2StoredObject | undefined {
    return this.versions.find((v) => v.fileId === fileId);
  }

  async deleteFile(fileName: unknown, fileId: unknown): Promise<B2StoredObject> {
    const at = this.versions.findIndex((v) => v.fileName === fileName && v.fileId === fileId);
    const obj = this.versions[at];
    if (!obj) throw new B2StoreError(400, "file_not_present", `File not present: ${String(fileName)} ${String(fileId)}`);
    this.versions.splice(at, 1);
    const latest = this.versions.findLast((v) => v.fileName === obj.fileName);
    if (latest) this.objects.set(obj.fileName, latest);
    else this.objects.delete(obj.fileName);
    await rm(obj.path, { force: true });
    return obj;
  }

  async read(name: string): Promise<Buffer> {
    const obj = this.objects.get(name);
    if (!obj) throw new Error(`no object named ${name}`);
    return readFile(obj.path);
  }
}

/** The JSON B2 returns for a file (upload, finish, list, get_file_info). */
export function fileJson(accountId: string, obj: B2StoredObject): Record<string, unknown> {
  return {
    accountId,
    action: obj.action,
    bucketId: obj.bucketId,
    contentLength: obj.size,
    contentSha1: obj.contentSha1,
    contentMd5: null,
    contentType: obj.contentType,
    fileId: obj.fileId,
    fileInfo: obj.fileInfo,
    fileName: obj.fileName,
    fileRetention: { isClientAuthorizedToRead: true, value: null },
    legalHold: { isClientAuthorizedToRead: true, value: null },
    serverSideEncryption: { algorithm: null, mode: null },
    uploadTimestamp: obj.uploadTimestamp,
  };
}
