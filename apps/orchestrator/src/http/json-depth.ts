import { ApiError } from "./api-error.js";

/**
 * Deepest nesting a request body may have. Real bodies are a few levels deep (metadata and params
 * are small objects); thousands of levels would reach recursive code later (jsonb, serializers)
 * and end as a 500, so they are refused before JSON.parse with a 400.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Counts `[`/`{` nesting in JSON text outside strings, in one pass without recursion. Text that is
 * not JSON still gets a bounded answer; JSON.parse reports its own errors afterwards.
 */
export function jsonNestingDepth(text: string, stopAbove = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > deepest) deepest = depth;
      if (deepest > stopAbove) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return deepest;
}

export function assertJsonDepth(text: string): void {
  if (jsonNestingDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new ApiError("invalid_request", `JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`, [
      { path: "body", message: `at most ${MAX_JSON_DEPTH} levels of arrays and objects` },
    ]);
  }
}
