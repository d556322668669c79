import { mkdir, rm, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { WorkerBoxConfig } from "../config.js";
import { fail, ok } from "./doctor-check.js";
import type { CheckResult } from "./doctor-check.js";

const CHECK_WORK_DIR = "work dir";

/** Downloads, frames and outputs go to WORK_DIR; a read-only or full disk fails jobs midway. */
export async function checkWorkDir(cfg: WorkerBoxConfig, minFreeGb: number): Promise<CheckResult> {
  const dir = cfg.workDir;
  try {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, `.fleet-doctor-${process.pid}`);
    await writeFile(probe, "ok");
    await rm(probe, { force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return fail(CHECK_WORK_DIR, `WORK_DIR ${dir} is not writable (${code})`, `create it and give the worker's user write access (mkdir -p ${dir}), or point WORK_DIR at a writable volume`);
  }
  const fs = await statfs(dir);
  const freeGb = (fs.bavail * fs.bsize) / 1024 ** 3;
  if (freeGb < minFreeGb) {
    return fail(CHECK_WORK_DIR, `${dir} has ${freeGb.toFixed(1)} GB free, less than ${minFreeGb} GB`, "free disk space (docker system prune, old outputs) or move WORK_DIR to a larger volume");
  }
  return ok(CHECK_WORK_DIR, `${dir} writable, ${freeGb.toFixed(1)} GB free`);
}
