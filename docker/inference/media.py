"""ffmpeg/ffprobe helpers shared by the engines: probing, cancellable commands, encoder choice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from engine import Canceled, MediaError, ProcessingError, disk_full_error, is_disk_full

FFMPEG = os.environ.get("FFMPEG_BIN") or shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = os.environ.get("FFPROBE_BIN") or shutil.which("ffprobe") or "ffprobe"

# The original image's NVENC settings; libx264 at crf 18 is what MuseTalk used before NVENC.
ENCODER_ARGS = {
    "h264_nvenc": ["-c:v", "h264_nvenc", "-cq", "19", "-preset", "p4", "-pix_fmt", "yuv420p"],
    "libx264": ["-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"],
}


# Every ffmpeg/ffprobe that opens a job's input reads local files only: a crafted playlist or
# concat list would otherwise make ffmpeg fetch URLs or read other files on the box.
INPUT_GUARD = ["-protocol_whitelist", "file"]

# Demuxers an avatar or a voice may come in (ffprobe's format_name is a comma list, e.g.
# "mov,mp4,m4a,3gp,3g2,mj2"). Playlists, concat lists and image sequences (hls, concat, image2...)
# name other files and are refused before anything is decoded.
ALLOWED_FORMATS = frozenset({
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "wav", "mp3", "ogg",
    "flac", "aac", "mpegts", "flv", "asf", "wv", "w64",
})


@dataclass(frozen=True)
class MediaLimits:
    max_side_px: int = 4096
    max_duration_sec: float = 600.0


def limits_from_env(env: Dict[str, str]) -> MediaLimits:
    from engine import env_number
    return MediaLimits(
        max_side_px=env_number(env, "INFERENCE_MAX_SIDE_PX", 4096, int, 16),
        max_duration_sec=env_number(env, "INFERENCE_MAX_DURATION_SEC", 600.0, float, 1),
    )


def demuxer(info: Dict[str, object]) -> List[str]:
    """`-f <the demuxer ffprobe found>`: the decode uses the format that passed the allow-list."""
    name = str(info.get("format_name") or "").split(",")[0]
    return ["-f", name] if name in ALLOWED_FORMATS else []


def probe(path: str, kind: str, limits: Optional[MediaLimits] = None) -> Dict[str, object]:
    """Streams and duration of a media file; MediaError when ffprobe cannot read it or it is
    outside what the engine accepts (format, size, length). Nothing is decoded before this."""
    if not os.path.isfile(path):
        raise MediaError(f"{kind} file not found: {path}", stage="validation")
    try:
        done = subprocess.run(
            [FFPROBE, "-v", "error", *INPUT_GUARD, "-show_entries",
             "stream=codec_type,width,height,avg_frame_rate,r_frame_rate:stream_tags=rotate"
             ":stream_side_data=rotation:format=duration,format_name",
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
    try:
        info = json.loads(done.stdout or "{}")
    except ValueError as exc:
        raise MediaError(f"{kind} file: unreadable ffprobe output", stage="validation") from exc
    streams = info.get("streams") or []
    fmt = info.get("format") or {}
    format_name = str(fmt.get("format_name") or "unknown")
    duration = _to_float(fmt.get("duration"))
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width, height = _display_size(video) if video else (None, None)
    result = {
        "duration": duration,
        "format_name": format_name,
        "video": video,
        "audio": audio,
        "width": width,
        "height": height,
        "fps": _fraction(video.get("avg_frame_rate") or video.get("r_frame_rate")) if video else None,
    }
    if limits is not None:
        check_limits(result, kind, limits)
    return result


def check_limits(info: Dict[str, object], kind: str, limits: MediaLimits) -> None:
    format_name = str(info.get("format_name"))
    if not set(format_name.split(",")) & ALLOWED_FORMATS:
        raise MediaError(f"{kind} file format {format_name!r} is not accepted", stage="validation",
                         details={"format_name": format_name, "allowed": sorted(ALLOWED_FORMATS)})
    duration = info.get("duration")
    if not isinstance(duration, float) or duration <= 0:
        raise MediaError(f"{kind} file has no duration", stage="validation", details={"format_name": format_name})
    if duration > limits.max_duration_sec:
        raise MediaError(f"{kind} is {duration:.1f} s long, over the {limits.max_duration_sec:g} s limit",
                         stage="validation",
                         details={"duration_sec": duration, "max_duration_sec": limits.max_duration_sec})
    width, height = info.get("width"), info.get("height")
    if info.get("video") is not None and kind == "video":
        if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
            raise MediaError(f"{kind} stream has no picture size", stage="validation")
        if max(width, height) > limits.max_side_px:
            raise MediaError(f"{kind} is {width}x{height}, over the {limits.max_side_px} px limit per side",
                             stage="validation",
                             details={"width": width, "height": height, "max_side_px": limits.max_side_px})


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
        if is_disk_full(RuntimeError(details["stderr"])):
            raise disk_full_error(RuntimeError(message + ": " + details["stderr"][-300:]), stage)
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
        [FFMPEG, "-y", "-v", "error", *INPUT_GUARD, "-i", video_path, *INPUT_GUARD, "-i", audio_path,
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


def _display_size(video: Dict[str, object]):
    """Width and height as ffmpeg will decode them: it applies the rotation a phone recorded."""
    width, height = video.get("width"), video.get("height")
    if not isinstance(width, int) or not isinstance(height, int):
        return None, None
    rotation = _to_float((video.get("tags") or {}).get("rotate")) or 0.0  # type: ignore[union-attr]
    for side in video.get("side_data_list") or []:  # type: ignore[union-attr]
        if isinstance(side, dict) and "rotation" in side:
            rotation = _to_float(side.get("rotation")) or 0.0
    if round(abs(rotation)) % 180 == 90:
        return height, width
    return width, height


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
