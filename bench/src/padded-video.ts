import { open, stat } from "node:fs/promises";
import { makeTestVideo } from "@fleet/testing/media";

/**
 * A playable mp4 (H.264 + AAC, so the worker's ffprobe check passes) of exactly `bytes` bytes:
 * a short real video followed by one top-level `free` box that players and ffprobe skip.
 * Zeros cost nothing to make, and the upload path (read, SHA-1, send) cannot tell them apart
 * from encoded frames.
 */
export async function makePaddedVideo(path: string, bytes: number): Promise<void> {
  await makeTestVideo(path, { seconds: 2, width: 160, height: 120, withAudio: true });
  const size = (await stat(path)).size;
  const pad = bytes - size;
  if (pad < 16) throw new Error(`target ${bytes} bytes is smaller than the base video (${size})`);
  // A 64-bit ("largesize") box header: size field 1, type, then the real size.
  const header = Buffer.alloc(16);
  header.writeUInt32BE(1, 0);
  header.write("free", 4, "latin1");
  header.writeBigUInt64BE(BigInt(pad), 8);
  const fh = await open(path, "a");
  try {
    await fh.write(header);
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    for (let left = pad - 16; left > 0; left -= chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, left));
  } finally {
    await fh.close();
  }
}
