/** `ECONNREFUSED connect 127.0.0.1:8080` reads better in a log line than a stack. */
export function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${typeof code === "string" ? `${code} ` : ""}${err.message}${cause}`.trim();
}
