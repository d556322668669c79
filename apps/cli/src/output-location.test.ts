import type { JobView } from "@fleet/contract";
import { describe, expect, it } from "vitest";
import { localOutputPath } from "./output-location.js";

const job = (output_url: string | null): JobView =>
  ({ output_url }) as JobView;
const mappings = [{ url: "http://127.0.0.1:8000/outputs", dir: "/data/worker/outputs" }];

describe("localOutputPath", () => {
  it("maps a local-storage worker's output URL to the file under its outputs directory", () => {
    expect(localOutputPath(job("http://127.0.0.1:8000/outputs/avatar/outputs/j%201/out.mp4"), mappings)).toBe(
      "/data/worker/outputs/avatar/outputs/j 1/out.mp4",
    );
  });

  it("gives no path for URLs of other hosts or keys that climb out of the directory", () => {
    expect(localOutputPath(job("https://93.184.216.34/file/b/out.mp4"), mappings)).toBeNull();
    expect(localOutputPath(job("http://127.0.0.1:8000/outputs/../../etc/passwd"), mappings)).toBeNull();
    expect(localOutputPath(job(null), mappings)).toBeNull();
  });
});
