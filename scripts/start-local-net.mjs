// Ports and readiness for the quick start.
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A port the OS reports free right now (for --port 0, mainly in tests). */
export function freePort(host) {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Fails with the flag to change when something already listens there (often a previous ./fleetw start). */
export function assertPortFree(host, port, flag) {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (err) =>
      reject(
        new Error(
          err.code === "EADDRINUSE"
            ? `port ${port} on ${host} is already in use (another ./fleetw start?); stop it or pass ${flag} <another port>`
            : `cannot listen on ${host}:${port}: ${err.message}`,
        ),
      ),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** Polls `check` until it resolves true; throws after timeoutMs, or as soon as `abandon()` says so. */
export async function waitUntil(check, { timeoutMs, what, abandon = () => false, intervalMs = 250 }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (abandon()) throw new Error(`gave up waiting for ${what}`);
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
}
