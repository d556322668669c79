import { z } from "zod";
import { ApiError } from "../http/api-error.js";

const Cursor = z.tuple([z.string().regex(/^\d{4}-\d{2}-\d{2} [\d:.]+[+-][\d:]+$/), z.uuid()]);

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
