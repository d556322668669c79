/** A connection (or a submitted URL) refused by the egress policy. */
export class EgressRefusedError extends Error {
  override readonly name = "EgressRefusedError";
  readonly code = "ERR_FLEET_EGRESS_REFUSED";
  constructor(
    readonly host: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(
      host === address
        ? `${address} is not a public address (${range}); set ALLOW_PRIVATE_NETWORK_URLS=true to allow`
        : `${host} resolves to ${address}, not a public address (${range}); set ALLOW_PRIVATE_NETWORK_URLS=true to allow`,
    );
  }
}

/** The policy's refusal, if `err` or anything in its cause chain is one. */
export function findEgressRefusal(err: unknown): EgressRefusedError | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof EgressRefusedError) return e;
  }
  return null;
}
