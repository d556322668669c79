import { readFile } from "node:fs/promises";
import os from "node:os";
import pg from "pg";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  node: string;
  postgres: string;
  os: string;
  /** 1-minute load average when the run started: how busy the shared machine already was. */
  loadAtStart: number;
}

async function cpuModel(): Promise<string> {
  // os.cpus() says "AMD EPYC" on some VMs; /proc/cpuinfo has the same field, read both.
  const fromOs = os.cpus()[0]?.model?.trim();
  try {
    const info = await readFile("/proc/cpuinfo", "utf8");
    const m = /^model name\s*:\s*(.+)$/m.exec(info);
    return m?.[1]?.trim() ?? fromOs ?? "unknown";
  } catch {
    return fromOs ?? "unknown";
  }
}

export async function describeMachine(serverUrl: string): Promise<MachineInfo> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  let postgres: string;
  try {
    const { rows } = await client.query<{ server_version: string }>("show server_version");
    postgres = rows[0]?.server_version ?? "unknown";
  } finally {
    await client.end();
  }
  return {
    cpuModel: await cpuModel(),
    cores: os.cpus().length,
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    postgres,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}
