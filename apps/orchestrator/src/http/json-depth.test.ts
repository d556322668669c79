import { describe, expect, test } from "vitest";
import { jsonNestingDepth } from "./json-depth.js";

describe("jsonNestingDepth", () => {
  test.each([
    ["1", 0],
    ["{}", 1],
    ['{"a":[1,{"b":[]}]}', 4],
    ['{"a":"[[[[{{{{"}', 1],
    ['{"a":"\\"[[[["}', 1],
    ['{"a":"\\\\"}', 1],
    ['["\\\\\\"[[", [[]]]', 3],
  ])("%s is %i deep", (text, depth) => {
    expect(jsonNestingDepth(text)).toBe(depth);
  });

  test("a body 100,000 levels deep is counted without recursion", () => {
    expect(jsonNestingDepth("[".repeat(100_000))).toBe(100_000);
  });

  test("stops counting once past the bound", () => {
    expect(jsonNestingDepth("[".repeat(1_000_000), 64)).toBe(65);
  });
});
