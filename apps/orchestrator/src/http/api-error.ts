import { ERROR_STATUS, type ErrorCode } from "@fleet/contract";

/** A 4xx/5xx with a stable code; the error handler turns it into the contract's ErrorBody. */
export class ApiError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: { path: string; message: string }[],
  ) {
    super(message);
    this.name = "ApiError";
    this.statusCode = ERROR_STATUS[code];
  }
}
