"""A CPU engine for CI: loops the avatar video to the audio's length and muxes the audio.

No lip movement (lip_sync is False), but the output is a real, playable video, so everything
around inference is exercised for real. Switches, per job in `params.fake_mode` or for every job
in FAKE_ENGINE_MODE:
  slow         each step takes ten times longer (time to watch progress or cancel)
  oom          raises CUDA's out-of-memory error halfway, as torch does
  no_face      raises "no face detected" (a media error)
  undecodable  treats the video as undecodable (a media error)
  fail         the encoder exits non-zero
  empty_output the engine "succeeds" but leaves a 0-byte file (the phantom success)
  no_output    the engine "succeeds" but writes nothing
  hang         stops in a step and ignores cancel (a wedged GPU kernel)
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, Optional

from engine import Canceled, Engine, Job, MediaError, ProgressCallback, SetupError, check_cancel, env_flag, env_number
from media import FFMPEG, INPUT_GUARD, MediaLimits, limits_from_env, probe, require_stream, run_command

MODES = {"slow", "oom", "no_face", "undecodable", "fail", "empty_output", "no_output", "hang"}


class FakeEngine(Engine):
    name = "fake"
    version = "1"
    lip_sync = False

    def __init__(
        self,
        load_sec: float = 0.0,
        step_sec: float = 0.05,
        steps: int = 8,
        default_mode: Optional[str] = None,
        fail_load: bool = False,
        hang_sec: float = 3600.0,
        step_hook: Optional[Callable[[int], None]] = None,
        limits: MediaLimits = MediaLimits(),
    ) -> None:
        if default_mode and default_mode not in MODES:
            raise ValueError(f"unknown fake mode {default_mode!r}; one of {sorted(MODES)}")
        self.load_sec = load_sec
        self.step_sec = step_sec
        self.steps = max(1, steps)
        self.default_mode = default_mode
        self.fail_load = fail_load
        self.hang_sec = hang_sec
        # Tests pass a hook that blocks until they release the step, so they can observe
        # progress and cancel mid-run without depending on timing.
        self.step_hook = step_hook
        self.limits = limits
        # Tests count these: the server must load once, however many jobs run.
        self.load_calls = 0
        self.run_calls = 0
        self.after_failure_calls = 0
        # Set by tests to let a "hang" step return, so no thread outlives the test.
        self.release_hang = threading.Event()

    @classmethod
    def from_env(cls, env: Dict[str, str]) -> "FakeEngine":
        mode = env.get("FAKE_ENGINE_MODE") or None
        if mode and mode not in MODES:
            raise SetupError(f"FAKE_ENGINE_MODE must be one of {sorted(MODES)}, got {mode!r}")
        return cls(
            load_sec=env_number(env, "FAKE_ENGINE_LOAD_SEC", 0.0, float, 0),
            step_sec=env_number(env, "FAKE_ENGINE_STEP_SEC", 0.05, float, 0),
            steps=env_number(env, "FAKE_ENGINE_STEPS", 8, int, 1),
            default_mode=mode,
            fail_load=env_flag(env, "FAKE_ENGINE_FAIL_LOAD", False),
            limits=limits_from_env(env),
        )

    def load(self) -> None:
        self.load_calls += 1
        time.sleep(self.load_sec)
        if self.fail_load:
            raise SetupError("fake engine told to fail its setup (FAKE_ENGINE_FAIL_LOAD)")
        if not os.path.exists(FFMPEG) and "/" in FFMPEG:
            raise SetupError(f"ffmpeg not found at {FFMPEG}")
        # A plain print, as MuseTalk's loaders make ("load unet model from ..."): the server must
        # turn it into a JSON log line like everything else on stdout.
        print(f"fake engine: models loaded in {self.load_sec:g} s")

    def run(self, job: Job, progress: ProgressCallback, cancel: threading.Event) -> Dict[str, Any]:
        self.run_calls += 1
        mode = str(job.params.get("fake_mode") or self.default_mode or "")
        started = time.monotonic()

        progress(0.02, "preprocessing")
        video = probe(job.video_path, "video", self.limits)
        require_stream(video, "video", "video")
        audio = probe(job.audio_path, "audio", self.limits)
        require_stream(audio, "audio", "audio")
        if mode == "undecodable":
            raise MediaError("video file is not decodable media", stage="preprocessing")
        if mode == "no_face":
            raise MediaError("no face detected in any frame of the avatar video", stage="preprocessing")

        step_sec = self.step_sec * (10 if mode == "slow" else 1)
        for step in range(self.steps):
            if self.step_hook is not None:
                self.step_hook(step)
            if mode == "hang" and step == self.steps // 2:
                self.release_hang.wait(self.hang_sec)
            check_cancel(cancel)
            if mode == "oom" and step == self.steps // 2:
                # The exact wording torch 2.0 uses, so the server's classification is what is tested.
                raise RuntimeError(
                    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity; "
                    "5.12 GiB already allocated)"
                )
            time.sleep(step_sec)
            progress(0.1 + 0.6 * (step + 1) / self.steps, "inference")
        check_cancel(cancel)

        duration = audio.get("duration") or 0.0
        self._encode(job, duration, mode, progress, cancel)
        if mode == "empty_output":
            open(job.output_path, "wb").close()
        if mode == "no_output" and os.path.exists(job.output_path):
            os.remove(job.output_path)
        return {
            "GENERATION_TIME_SEC": round(time.monotonic() - started, 3),
            "engine": self.name,
            "lip_sync": False,
            "encoder": "libx264",
            "audio_duration_sec": duration,
            "fps": video.get("fps"),
        }

    def _encode(self, job: Job, duration: float, mode: str, progress: ProgressCallback,
                cancel: threading.Event) -> None:
        def on_line(line: str) -> None:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and duration > 0 and value.isdigit():
                progress(0.7 + 0.29 * min(1.0, int(value) / 1e6 / duration), "encoding")

        cmd = [
            FFMPEG, "-y", "-v", "error", "-nostats", "-progress", "pipe:1",
            "-stream_loop", "-1", *INPUT_GUARD, "-i", job.video_path, *INPUT_GUARD, "-i", job.audio_path,
            "-map", "0:v:0", "-map", "1:a:0", "-shortest",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
            job.output_path,
        ]
        if mode == "fail":
            cmd.insert(1, "-definitely-not-an-option")
        run_command(cmd, cancel, stage="postprocessing", what="video encode", on_stdout_line=on_line)

    def after_failure(self) -> None:
        self.after_failure_calls += 1


__all__ = ["FakeEngine", "MODES", "Canceled"]
