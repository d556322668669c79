import { z } from "zod";

/**
 * The boolean spellings every app accepts, and `.env.example` lists. Anything else is refused at
 * start: `z.coerce.boolean()` would read "false" as true, and a typo must not switch a flag on.
 */
export const BOOLEAN_SPELLINGS = ["true", "false", "1", "0"] as const;

/**
 * Blank counts as unset everywhere, as in a compose file's `VAR=` line, so a blank value takes the
 * setting's default (or its "required" error) instead of failing to parse.
 */
export function emptyAsUnset(value: unknown): unknown {
  return typeof value === "string" && value.trim() === "" ? undefined : value;
}

/** A boolean setting: one of BOOLEAN_SPELLINGS, `fallback` when unset or blank. */
export function envBoolean(fallback: boolean) {
  return z.preprocess(
    emptyAsUnset,
    z
      .enum(BOOLEAN_SPELLINGS, { error: "must be true, false, 1 or 0" })
      .optional()
      .transform((v) => (v === undefined ? fallback : v === "true" || v === "1")),
  );
}

/**
 * One line per wrong variable, `NAME: what is wrong`, the format both apps print at start. A
 * variable that is unset (or blank) reads "is required" rather than zod's type message.
 */
export function describeEnvIssues(issues: readonly z.core.$ZodIssue[], source: Record<string, string | undefined>): string[] {
  return issues.map((issue) => {
    const name = issue.path.join(".");
    return emptyAsUnset(source[name]) === undefined ? `${name}: is required` : `${name}: ${issue.message}`;
  });
}
