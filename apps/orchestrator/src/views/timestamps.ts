/**
 * drizzle hands timestamptz back as PostgreSQL's text ("2026-01-02 03:04:05.123456+00") on both
 * drivers. Rewritten to ISO 8601 before parsing, rather than trusting Date's lenient parser.
 */
export function toIso(value: Date | string): string {
  if (value instanceof Date) return value.toISOString();
  const iso = value.replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new Error(`unparseable timestamp from the database: ${value}`);
  return date.toISOString();
}

export function toIsoOrNull(value: Date | string | null): string | null {
  return value === null ? null : toIso(value);
}
