"""ffmpeg/ffprobe helpers shared by the engines: probing, cancellable commands, encoder choice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from typing import Callable, Dict, List, Optional

from engine import Canceled, MediaError, ProcessingError

FFMPEG = os.environ.get("FFMPEG_BIN") or shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = os.environ.get("FFPROBE_BIN") or shutil.which("ffprobe") or "ffprobe"

# The original image's NVENC settings; libx264 at crf 18 is what MuseTalk used before NVENC.
ENCODER_ARGS = {
    "h264_nvenc": ["-c:v", "h264_nvenc", "-cq", "19", "-preset", "p4", "-pix_fmt", "yuv420p"],
    "libx264": ["-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
}


def probe(path: str, kind: str) -> Dict[str, object]:
    """Streams and duration of a media file; MediaError when ffprobe cannot read it."""
    if not os.path.isfile(path):
        raise MediaError(f"{kind} file not found: {path}", stage="validation")
    try:
        done = subprocess.run(
            [FFPROBE, "-v", "error", "-show_entries",
             "stream=codec_type,width,height,avg_frame_rate,r_frame_rate:format=duration",
             "-of", "json", path],
            capture_output=True, text=True, timeout=60,
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffprobe timed out on the {kind} file", stage="validation") from exc
    if done.returncode != 0:
        raise MediaError(
            f"{kind} file is not decodable media",
            stage="validation",
            details={"ffprobe_stderr": done.stderr[-500:]},
        )
    info = json.loads(done.stdout or "{}")
    streams = info.get("streams") or []
    duration = _to_float((info.get("format") or {}).get("duration"))
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return {
        "duration": duration,
        "video": video,
        "audio": audio,
        "fps": _fraction(video.get("avg_frame_rate") or video.get("r_frame_rate")) if video else None,
    }


def require_stream(info: Dict[str, object], codec_type: str, kind: str) -> None:
    if not info.get(codec_type):
        raise MediaError(f"{kind} file has no {codec_type} stream", stage="validation")


def run_command(
    cmd: List[str],
    cancel: threading.Event,
    stage: str,
    what: str,
    on_stdout_line: Optional[Callable[[str], None]] = None,
    timeout_sec: Optional[float] = None,
    error_class: type = ProcessingError,
) -> None:
    """Run cmd to completion; kill it on cancel. A non-zero exit is an error, never ignored."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stderr_tail: List[str] = []
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, on_stdout_line, None), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, None, stderr_tail), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout_sec if timeout_sec else None
    while proc.poll() is None:
        if cancel.is_set():
            _kill(proc)
            raise Canceled()
        if deadline is not None and time.monotonic() > deadline:
            _kill(proc)
            raise ProcessingError(f"{what} timed out after {timeout_sec:.0f}s", stage=stage, retryable=True)
        time.sleep(0.1)
    for reader in readers:
        reader.join(timeout=5)
    if proc.returncode != 0:
        message = f"{what} failed (ffmpeg exit {proc.returncode})"
        details = {"stderr": "".join(stderr_tail)[-1000:]}
        if error_class is MediaError:
            raise MediaError(message, stage=stage, details=details)
        raise error_class(message, stage=stage, details=details)


def choose_h264_encoder(preferred: str = "auto") -> str:
    """h264_nvenc when this GPU/driver can really open an encoder session, else libx264."""
    if preferred in ENCODER_ARGS:
        return preferred
    try:
        done = subprocess.run(
            [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=0.2",
             *ENCODER_ARGS["h264_nvenc"], "-f", "null", "-"],
            capture_output=True, timeout=30,
        )
        if done.returncode == 0:
            return "h264_nvenc"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "libx264"


def mux_audio(video_path: str, audio_path: str, output_path: str, cancel: threading.Event) -> None:
    """Video stream copied, audio to AAC, cut at the shorter of the two (the original's mux)."""
    run_command(
        [FFMPEG, "-y", "-v", "error", "-i", video_path, "-i", audio_path,
         "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-shortest",
         "-movflags", "+faststart", output_path],
        cancel, stage="postprocessing", what="audio mux",
    )


def check_output(path: str) -> Optional[str]:
    """Why the output is not a usable video, or None when it is."""
    if not os.path.isfile(path):
        return "output file was not written"
    if os.path.getsize(path) == 0:
        return "output file is empty (0 bytes)"
    try:
        done = subprocess.run(
            [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_type",
             "-of", "csv=p=0", path],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"output could not be probed: {exc}"
    if done.returncode != 0 or "video" not in done.stdout:
        return "output file has no decodable video stream"
    return None


def _pump(stream, on_line, tail: Optional[List[str]]) -> None:
    for line in stream:
        if on_line is not None:
            on_line(line)
        if tail is not None:
            tail.append(line)
            if len(tail) > 50:
                del tail[0]
    stream.close()


def _kill(proc: subprocess.Popen) -> None:
    proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _to_float(value: object) -> Optional[float]:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _fraction(value: object) -> Optional[float]:
    if not isinstance(value, str) or "/" not in value:
        return _to_float(value)
    num, den = value.split("/", 1)
    n, d = _to_float(num), _to_float(den)
    return n / d if n is not None and d else None
