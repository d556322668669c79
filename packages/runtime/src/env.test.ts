import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BOOLEAN_SPELLINGS, describeEnvIssues, emptyAsUnset, envBoolean } from "./env.js";

describe("envBoolean", () => {
  it("reads true and 1 as on, false and 0 as off, and blank or unset as the fallback", () => {
    const flag = envBoolean(false);
    expect(["true", "1", "false", "0"].map((v) => flag.parse(v))).toEqual([true, true, false, false]);
    expect([undefined, "", "  "].map((v) => flag.parse(v))).toEqual([false, false, false]);
    expect(envBoolean(true).parse(undefined)).toBe(true);
  });

  it("refuses every other spelling, so a typo never switches a flag on", () => {
    for (const bad of ["yes", "no", "TRUE", "on", "ture"]) {
      const result = envBoolean(false).safeParse(bad);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toBe("must be true, false, 1 or 0");
    }
  });

  it("accepts exactly the spellings .env.example documents", () => {
    expect(BOOLEAN_SPELLINGS).toEqual(["true", "false", "1", "0"]);
  });
});

describe("describeEnvIssues", () => {
  const schema = z.object({ PORT: z.coerce.number().int().max(65_535), URL: z.string() });

  it("names each wrong variable with what is wrong, and an unset or blank one as required", () => {
    const source = { PORT: "70000", URL: "" };
    const parsed = schema.safeParse({ PORT: source.PORT, URL: emptyAsUnset(source.URL) });
    expect(describeEnvIssues(parsed.error?.issues ?? [], source)).toEqual([
      "PORT: Too big: expected number to be <=65535",
      "URL: is required",
    ]);
  });
});
