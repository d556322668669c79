import { createReadStream } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";

export interface ServedFile {
  path: string;
  size: number;
  contentType: string;
}

/**
 * Answers GET/HEAD for one file with a single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`)
 * so browsers and ffprobe can seek; a range that starts past the end is 416. Used by the worker's
 * /outputs and the CLI's server for local input files.
 */
export function sendFileRange(req: IncomingMessage, res: ServerResponse, file: ServedFile): void {
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
  let start = 0;
  let end = file.size - 1;
  let status = 200;
  if (range && (range[1] || range[2])) {
    start = range[1] ? Number(range[1]) : Math.max(0, file.size - Number(range[2]));
    end = range[1] && range[2] ? Math.min(Number(range[2]), file.size - 1) : file.size - 1;
    if (start > end || start >= file.size) {
      res.writeHead(416, { "content-range": `bytes */${file.size}` }).end();
      return;
    }
    status = 206;
  }
  res.writeHead(status, {
    "content-type": file.contentType,
    "content-length": Math.max(0, end - start + 1),
    "accept-ranges": "bytes",
    ...(status === 206 ? { "content-range": `bytes ${start}-${end}/${file.size}` } : {}),
  });
  if (req.method === "HEAD" || file.size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file.path, { start, end });
  // A file removed or unreadable mid-answer: the headers are gone, so cut the connection.
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}
