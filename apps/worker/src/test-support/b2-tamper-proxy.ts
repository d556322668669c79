import http from "node:http";
import type { AddressInfo } from "node:net";
import { Transform } from "node:stream";

/**
 * A man in the middle between the worker and the B2 test server, for the checksum tests:
 * it can flip one byte of an upload's body on the way in (B2 must refuse it: the SHA-1 no longer
 * matches) or rewrite the contentSha1 B2 reports on the way out (the worker must refuse that).
 * URLs in JSON replies are rewritten to point at the proxy, so uploads pass through it too.
 */
export interface B2TamperProxy {
  url: string;
  authorizeUrl: string;
  /** The next `n` upload bodies (file or part) get one byte flipped. */
  corruptUploads(n: number): void;
  /** The next `n` upload replies claim a contentSha1 of forty zeros. */
  lieAboutSha1(n: number): void;
  close(): Promise<void>;
}

const UPLOAD = /\/b2api\/v\d\/b2_upload_(file|part)\//;

export async function startB2TamperProxy(targetUrl: string): Promise<B2TamperProxy> {
  const target = new URL(targetUrl);
  let corrupt = 0;
  let lie = 0;
  let proxyUrl = "";

  const server = http.createServer((req, res) => {
    const isUpload = UPLOAD.test(req.url ?? "");
    const flip = isUpload && corrupt > 0;
    if (flip) corrupt -= 1;
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (up) => {
        const type = String(up.headers["content-type"] ?? "");
        if (!type.includes("json")) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on("data", (c: Buffer) => chunks.push(c));
        up.on("end", () => {
          let text = Buffer.concat(chunks).toString("utf8").split(targetUrl).join(proxyUrl);
          if (isUpload && lie > 0 && up.statusCode === 200) {
            lie -= 1;
            text = text.replace(/"contentSha1":\s*"[^"]*"/, `"contentSha1":"${"0".repeat(40)}"`);
          }
          const headers = { ...up.headers, "content-length": String(Buffer.byteLength(text)) };
          res.writeHead(up.statusCode ?? 502, headers);
          res.end(text);
        });
      },
    );
    upstream.on("error", () => res.destroy());
    let flipped = !flip;
    const tamper = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (!flipped && chunk.length > 0) {
          flipped = true;
          const copy = Buffer.from(chunk);
          copy[0] = (copy[0] ?? 0) ^ 0xff;
          return cb(null, copy);
        }
        cb(null, chunk);
      },
    });
    req.pipe(tamper).pipe(upstream);
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxyUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: proxyUrl,
    authorizeUrl: `${proxyUrl}/b2api/v2/b2_authorize_account`,
    corruptUploads: (n) => void (corrupt += n),
    lieAboutSha1: (n) => void (lie += n),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
