"""CPU benchmark of the prepared-avatar cache: the first and the second job of one avatar.

    /usr/bin/python3 bench_avatar_cache.py [--avatar-sec 10] [--voice-sec 5] [--size 640x480] [--rounds 3]

The real engine with standins.py's small models (INFERENCE_DEVICE=cpu): decoding, boxes, crops,
JPEG frames, blending, encoding and the mux are real; the models are tiny, so preparation and
generation are both far cheaper than on a GPU with MuseTalk's weights, and the ratio says what the
cache saves of the work around the models, not of MuseTalk's. Each round uses a fresh cache. Prints
one JSON line per round and a summary line (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

from avatar_cache import AvatarCache  # noqa: E402
from engine import Job  # noqa: E402
from musetalk_engine import MuseTalkEngine  # noqa: E402
from standins import attach_standins  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--avatar-sec", type=float, default=10.0)
    parser.add_argument("--voice-sec", type=float, default=5.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(2)
    root = tempfile.mkdtemp(prefix="fleet-bench-cache-")
    try:
        avatar, voice = os.path.join(root, "avatar.mp4"), os.path.join(root, "voice.wav")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={width}x{height}:rate=30000/1001:duration={args.avatar_sec}",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", avatar], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"sine=frequency=300:duration={args.voice_sec}", voice], check=True)
        face = (width // 3, height // 4, 2 * width // 3, 3 * height // 4)
        rounds = []
        for round_index in range(args.rounds):
            engine = MuseTalkEngine(device="cpu", encoder="libx264")
            attach_standins(engine, face)
            engine.cache = AvatarCache(os.path.join(root, f"cache-{round_index}"), max_bytes=1 << 34)
            jobs = []
            for n in range(2):
                work = os.path.join(root, f"r{round_index}-job{n}")
                os.makedirs(work)
                job = Job(id=f"r{round_index}-{n}", video_path=avatar, audio_path=voice,
                          output_path=os.path.join(work, "out.mp4"), work_dir=work, batch_size=8)
                started = time.monotonic()
                metrics = engine.run(job, lambda _v, _p: None, threading.Event())
                jobs.append({"wall_sec": round(time.monotonic() - started, 3), "cache": metrics["avatar_cache"],
                             "prepare_sec": metrics["prepare_sec"], "generation_sec": metrics["GENERATION_TIME_SEC"]})
            first, second = jobs
            record = {"round": round_index + 1, "first": first, "second": second,
                      "second_over_first": round(second["wall_sec"] / first["wall_sec"], 3),
                      "second_wall_over_generation": round(second["wall_sec"] / second["generation_sec"], 3)}
            rounds.append(record)
            print(json.dumps(record))
        print(json.dumps({
            "summary": "median of rounds",
            "avatar": f"{args.avatar_sec:g} s {width}x{height} at 29.97 fps -> {int(args.avatar_sec * 25)} frames at 25",
            "voice_sec": args.voice_sec,
            "first_wall_sec": statistics.median(r["first"]["wall_sec"] for r in rounds),
            "second_wall_sec": statistics.median(r["second"]["wall_sec"] for r in rounds),
            "second_over_first": statistics.median(r["second_over_first"] for r in rounds),
            "first_prepare_sec": statistics.median(r["first"]["prepare_sec"] for r in rounds),
            "second_prepare_sec": statistics.median(r["second"]["prepare_sec"] for r in rounds),
            "second_wall_over_generation": statistics.median(r["second_wall_over_generation"] for r in rounds),
            "cpus": os.cpu_count(), "torch": torch.__version__,
        }))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
