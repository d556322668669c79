import { z } from "zod";
import { ApiError } from "../http/api-error.js";

/** PostgreSQL's text form of a timestamptz: `2026-11-30 02:02:18.123456+00` (offset may carry minutes, seconds). */
const PG_TIMESTAMPTZ = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::([0-5]\d)){0,2}$/;

/**
 * A timestamp PostgreSQL will accept: the shape alone is not enough (`2024-13-45 99:99:99+00`
 * matches it and would fail the query's cast, a 500).
 */
function isRealTimestamp(text: string): boolean {
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offsetHours] = m.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 || offsetHours > 15) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const Cursor = z.tuple([z.string().refine(isRealTimestamp), z.uuid()]);

/** Opaque to clients: base64url of [created_at as PostgreSQL text, id]. */
export function encodeCursor(position: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString("base64url");
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = Cursor.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
    return { createdAt, id };
  } catch {
    throw new ApiError("invalid_request", "cursor is not one this API returned", [
      { path: "querystring.cursor", message: "pass next_cursor from the previous page unchanged" },
    ]);
  }
}
