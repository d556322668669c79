import { ApiError } from "./api-error.js";

/**
 * PostgreSQL text cannot hold NUL, and jsonb refuses unpaired UTF-16 surrogates (`"\ud800"`), so
 * such strings would pass the schema and then fail the INSERT with a 500. They are refused here,
 * before any handler runs, with the path of the first offender.
 */
// eslint-disable-next-line no-control-regex -- finding NUL is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function findUnstorableText(value: unknown, path = "body"): string | undefined {
  if (typeof value === "string") return UNSTORABLE.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = findUnstorableText(item, `${path}.${i}`);
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (UNSTORABLE.test(key)) return `${path}.${key.replace(UNSTORABLE, "?")}`;
      const found = findUnstorableText(item, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
}

export function assertStorableText(body: unknown): void {
  const path = findUnstorableText(body);
  if (path) {
    throw new ApiError("invalid_request", "strings may not contain NUL characters or unpaired surrogates", [
      { path, message: "contains a NUL character or an unpaired UTF-16 surrogate" },
    ]);
  }
}
