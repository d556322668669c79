import fc from "fast-check";

/**
 * Bodies past what the field generators make: nesting thousands of levels deep (the parser's
 * depth limit, recursive code after it), bodies near the size limit, and bytes that are not the
 * UTF-8 JSON the content type promises. Each is built from the route's ordinary body, so the
 * request is otherwise plausible.
 */
export type HostileEncoding =
  | { kind: "deep"; depth: number; shape: "array" | "object" | "mixed"; where: "whole" | "field" }
  | { kind: "huge"; shape: "string" | "keys" | "array" }
  | { kind: "invalid_utf8"; bytes: number[]; at: number }
  | { kind: "utf16"; bom: boolean; littleEndian: boolean }
  | { kind: "utf8_bom" };

/** Nesting depth: mostly past 5,000 (where recursive code broke), sometimes just past the limit. */
const depthArb = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 5_000, max: 40_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 60, max: 5_000 }) });

/** Bytes that are never valid UTF-8: a lone continuation, overlong forms, truncated sequences, surrogates, 0xFF. */
const INVALID_UTF8 = [[0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xff], [0xfe, 0xff], [0xf4, 0x90, 0x80, 0x80]];

export const hostileEncodingArb: fc.Arbitrary<HostileEncoding> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("deep" as const), depth: depthArb, shape: fc.constantFrom("array" as const, "object" as const, "mixed" as const), where: fc.constantFrom("whole" as const, "field" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("huge" as const), shape: fc.constantFrom("string" as const, "keys" as const, "array" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("invalid_utf8" as const), bytes: fc.constantFrom(...INVALID_UTF8), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("utf16" as const), bom: fc.boolean(), littleEndian: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: "utf8_bom" as const }) },
);

export function nestedJson(depth: number, shape: "array" | "object" | "mixed", inside = "1"): string {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < depth; i++) {
    const array = shape === "array" || (shape === "mixed" && i % 2 === 0);
    open.push(array ? "[" : '{"a":');
    close.push(array ? "]" : "}");
  }
  return `${open.join("")}${inside}${close.reverse().join("")}`;
}

/** Under the 256 KiB body limit, so the body reaches parsing and validation. */
const NEAR_LIMIT = 250 * 1024;

function hugeJson(body: unknown, shape: "string" | "keys" | "array"): string {
  const base = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  if (shape === "string") return JSON.stringify({ ...base, metadata: { pad: "z".repeat(NEAR_LIMIT - 1_000) } });
  if (shape === "keys") return JSON.stringify({ ...base, metadata: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])) });
  return JSON.stringify({ ...base, metadata: { list: Array.from({ length: 60_000 }, (_, i) => i % 10) } });
}

/** The payload the encoding makes of an ordinary body. */
export function hostilePayload(body: unknown, encoding: HostileEncoding): string | Buffer {
  const json = JSON.stringify(body) ?? "null";
  switch (encoding.kind) {
    case "deep": {
      const nested = nestedJson(encoding.depth, encoding.shape);
      if (encoding.where === "whole" || json[0] !== "{" || json === "{}") return nested;
      return `{"metadata":${nested},${json.slice(1)}`;
    }
    case "huge":
      return hugeJson(body, encoding.shape);
    case "invalid_utf8": {
      const bytes = Buffer.from(json, "utf8");
      const at = encoding.at % (bytes.length + 1);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(encoding.bytes), bytes.subarray(at)]);
    }
    case "utf16": {
      const text = `${encoding.bom ? "\ufeff" : ""}${json}`;
      const le = Buffer.from(text, "utf16le");
      return encoding.littleEndian ? le : le.swap16();
    }
    case "utf8_bom":
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json, "utf8")]);
  }
}

/** Path segments a client can put on the wire: malformed, overlong, NUL, slash and dot escapes. */
export const PERCENT_SEGMENTS = ["%", "%zz", "%E0%A4%A", "%ff", "%FF%FE", "%00", "%2F", "%2e%2e", "%2e%2e%2f%2e%2e", "%252e%252e", "%C0%AE%C0%AE", "%c0%80", "%ED%A0%80", "a%0Ab", "%u0041", "%%41", `${"%41".repeat(400)}`];
