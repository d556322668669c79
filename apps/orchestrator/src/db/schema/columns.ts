import { timestamp } from "drizzle-orm/pg-core";

/** Every timestamp is timestamptz: workers and operators live in different time zones. */
export function timestamptz(name: string) {
  return timestamp(name, { withTimezone: true, mode: "date" });
}
