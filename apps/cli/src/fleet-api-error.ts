import type { ErrorCode } from "@fleet/contract";

/** A 4xx/5xx from the orchestrator, with what an operator needs to ask about it: code and request id. */
export class FleetApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | null,
    message: string,
    readonly requestId: string | null,
    readonly details: readonly { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = "FleetApiError";
  }

  /** One line: `401 unauthorized: invalid key (request id req-1)`, then one line per field problem. */
  describe(): string {
    const head = `${this.status} ${this.code ?? "error"}: ${this.message}`;
    const id = this.requestId === null ? "" : ` (request id ${this.requestId})`;
    const fields = this.details.map((d) => `\n  ${d.path || "(body)"}: ${d.message}`).join("");
    return head + id + fields;
  }
}

function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  // undici wraps socket errors; the useful code (ECONNREFUSED, ENOTFOUND) is on the cause.
  const inner = err.cause instanceof Error ? (err.cause as NodeJS.ErrnoException).code : undefined;
  return inner ?? code ?? err.message;
}

/** The orchestrator could not be reached at all (refused, DNS, timeout, TLS). */
export class FleetConnectionError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach the orchestrator at ${url}: ${reasonOf(cause)}`, { cause });
    this.name = "FleetConnectionError";
  }
}

/** The server answered with something the contract does not describe: a different service, or a version skew. */
export class FleetProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FleetProtocolError";
  }
}
