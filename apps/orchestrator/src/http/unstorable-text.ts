import { ApiError } from "./api-error.js";

/**
 * PostgreSQL text cannot hold NUL, and jsonb refuses unpaired UTF-16 surrogates (`"\ud800"`), so
 * such strings would pass the schema and then fail the INSERT with a 500. They are refused here,
 * before any handler runs, with the path of the first offender.
 */
// eslint-disable-next-line no-control-regex -- finding NUL is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Walks the value with an explicit stack, not recursion: however deep a body is nested, this
 * check cannot overflow the call stack (the parser's depth limit is a separate line of defence).
 */
function findUnstorableText(value: unknown, path = "body"): string | undefined {
  const pending: Array<[unknown, string]> = [[value, path]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, where] = next;
    if (typeof item === "string") {
      if (UNSTORABLE.test(item)) return where;
    } else if (Array.isArray(item)) {
      // Pushed in reverse so the first offender in document order is the one reported.
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], `${where}.${i}`]);
    } else if (item !== null && typeof item === "object") {
      const entries = Object.entries(item);
      for (const [key] of entries) {
        if (UNSTORABLE.test(key)) return `${where}.${key.replace(UNSTORABLE, "?")}`;
      }
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i] as [string, unknown];
        pending.push([child, `${where}.${key}`]);
      }
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
