import fc from "fast-check";

/** Strings that break naive code: NUL, lone surrogates, RTL marks, combining marks, emoji, SQL and path tricks. */
const WEIRD_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\uffff",
  "\u202e\u0041\u0042",
  "e\u0301\u0301\u0301",
  "😀👩‍👩‍👧‍👦",
  "𝕗𝕝𝕖𝕖𝕥",
  "\r\n\t",
  "'; drop table jobs; --",
  "%00",
  "../../etc/passwd",
  "null",
  "undefined",
  "true",
  "0",
  "-1",
  "1e400",
  "NaN",
  "__proto__",
  "constructor",
  "<script>alert(1)</script>",
  "ｆｕｌｌｗｉｄｔｈ",
] as const;

/** Far over every field limit in the contract (10,000 chars for messages, 2,048 for URLs). */
const HUGE_STRING = "x".repeat(70_000);

export const weirdString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...WEIRD_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constant(HUGE_STRING) },
  { weight: 1, arbitrary: fc.integer({ min: 129, max: 12_000 }).map((n) => "y".repeat(n)) },
);

/** Any JSON value of the wrong kind for some field: nulls, numbers at the edges, strings, arrays, objects. */
export const garbageValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53 + 2, 65, 100_000) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 3, arbitrary: weirdString },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(weirdString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.constant(Array.from({ length: 200 }, () => "00000000-0000-4000-8000-000000000000")) },
  { weight: 1, arbitrary: fc.constant(deepObject(60)) },
);

function deepObject(depth: number): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = { nested: value };
  return value;
}

/** A printable-ASCII header value (HTTP forbids control characters; inject would throw, not the server). */
export const headerValue = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."abcXYZ019-_.:/=+ ~!*'()"), minLength: 1, maxLength: 80 }),
  fc.constantFrom("", "null", "' or 1=1 --", "k".repeat(9_000)),
);
