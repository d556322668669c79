"""The engine interface the inference server drives, and the error types it maps onto the contract.

An engine is loaded once (`load()`, models kept warm) and then runs one job at a time
(`run(job, progress, cancel)`); the server owns threads, state and the HTTP layer. Engines raise
the errors below so the server can report a contract `ErrorInfo` without guessing from text.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

ProgressCallback = Callable[[float, str], None]


@dataclass
class Job:
    id: str
    # None only when the worker was told the engine keeps this avatar prepared (video_sha256).
    video_path: Optional[str]
    audio_path: str
    # The engine writes here (inside the job's own directory); the server moves it to the
    # caller's output path only after checking it, so a failed run never leaves a file behind.
    output_path: str
    work_dir: str
    batch_size: int
    aspect_ratio: str = ""
    resolution: str = ""
    params: Dict[str, Any] = field(default_factory=dict)
    # sha256 of the video's bytes; when video_path is set too, the service has checked the file.
    video_sha256: Optional[str] = None


class EngineError(Exception):
    """A failure with a known meaning: maps one-to-one onto the contract's ErrorInfo."""

    error_type = "processing_error"

    def __init__(
        self,
        message: str,
        stage: str = "inference",
        retryable: bool = False,
        details: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.retryable = retryable
        self.details = details

    def to_error_info(self) -> Dict[str, Any]:
        return {
            "error_type": self.error_type,
            "stage": self.stage,
            "message": self.message[:10_000],
            "retryable": self.retryable,
            "details": self.details,
        }


class MediaError(EngineError):
    """The input itself is unusable (no face, undecodable): retrying elsewhere cannot help."""

    error_type = "media_error"

    def __init__(self, message: str, stage: str = "preprocessing", details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message, stage=stage, retryable=False, details=details)


class ProcessingError(EngineError):
    error_type = "processing_error"


class OutOfMemory(ProcessingError):
    """CUDA ran out of memory: another attempt (other GPU, smaller batch) may well succeed."""

    def __init__(self, message: str, stage: str = "inference", details: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(
            f"CUDA out of memory: {message}"[:10_000] if "out of memory" not in message.lower() else message,
            stage=stage,
            retryable=True,
            details={"hint": "lower BATCH_SIZE or use a GPU with more memory", **(details or {})},
        )


class SetupError(Exception):
    """load() could not make the engine ready; the server reports SETUP_FAILED."""


class Canceled(Exception):
    """Raised by an engine when it notices the cancel event between two steps."""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT: the box's disk, not the input, is at fault, so another box may succeed."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "no space left on device" in str(exc).lower() or "disk quota exceeded" in str(exc).lower()


def disk_full_error(exc: BaseException, stage: str) -> "ProcessingError":
    return ProcessingError(f"disk full: {exc}"[:10_000], stage=stage, retryable=True,
                           details={"cause": "disk_full", "hint": "free space on the work volume"})


def env_number(env: Dict[str, str], name: str, default: float, cast: Callable[[str], Any],
               minimum: Optional[float] = None, maximum: Optional[float] = None) -> Any:
    """One numeric setting; a bad value is a SetupError naming the variable (health: SETUP_FAILED)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise SetupError(f"{name} must be {'an integer' if cast is int else 'a number'}, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise SetupError(f"{name} must be {bounds}, got {raw!r}")
    return value


def env_flag(env: Dict[str, str], name: str, default: bool) -> bool:
    """The spellings the Node apps and .env.example accept: true/false/1/0; blank is the default."""
    raw = (env.get(name) or "").strip()
    if raw == "":
        return default
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise SetupError(f"{name} must be true, false, 1 or 0, got {env.get(name)!r}")


def is_cuda_oom(exc: BaseException) -> bool:
    # torch raises torch.cuda.OutOfMemoryError (a RuntimeError) or, from some kernels, a bare
    # RuntimeError with this text; cuDNN and cuBLAS have their own wording for the same thing.
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("cuda out of memory", "cudnn_status_alloc_failed", "cublas_status_alloc_failed")
    )


def classify_exception(exc: BaseException, stage: str) -> Dict[str, Any]:
    """ErrorInfo for any exception an engine let escape."""
    if isinstance(exc, EngineError):
        return exc.to_error_info()
    if is_disk_full(exc):
        return disk_full_error(exc, stage).to_error_info()
    if is_cuda_oom(exc):
        return OutOfMemory(str(exc), stage=stage).to_error_info()
    return {
        "error_type": "unknown_error",
        "stage": stage,
        "message": f"{type(exc).__name__}: {exc}"[:10_000],
        "retryable": False,
        "details": None,
    }


def avatar_not_prepared(video_sha256: Optional[str]) -> ProcessingError:
    """A job named its avatar by hash only, and the engine does not (or no longer) keep it: the
    entry was evicted after the worker asked, or the worker did not ask. Retryable: the next
    attempt is told to send the video."""
    return ProcessingError("the prediction names its avatar by video_sha256 only, and this engine does not keep "
                           "that avatar prepared (evicted since the worker asked?)", stage="preprocessing",
                           retryable=True, details={"cause": "avatar_not_prepared", "video_sha256": video_sha256})


def check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Canceled()


class Engine:
    """Base class; the server only calls these members."""

    name = "engine"
    version = "0"
    # False for engines that make a video without lip movement (the fake/CPU ones).
    lip_sync = True
    # The server's JSON logger (the service sets it); engines log events through it.
    log: Callable[..., None] = staticmethod(lambda *_args, **_fields: None)

    def load(self) -> None:
        raise NotImplementedError

    def run(self, job: Job, progress: ProgressCallback, cancel: threading.Event) -> Dict[str, Any]:
        """Write job.output_path; return metrics. Raise EngineError, Canceled, or anything else."""
        raise NotImplementedError

    def gpu_info(self) -> Optional[Dict[str, Any]]:
        return None

    def cache_info(self) -> Optional[Dict[str, Any]]:
        """The prepared-avatar cache's size and hit rate, for /health-check; None without one."""
        return None

    def has_prepared(self, video_sha256: str) -> bool:
        """Whether a job may name this avatar by its hash alone (GET /avatars/{sha256}). An
        engine without an avatar cache never has it: the worker sends the video."""
        return False

    def after_failure(self) -> None:
        """Release what a failed run may have left allocated (the CUDA cache after an OOM)."""


class BrokenEngine(Engine):
    """Stands in for an engine whose settings are wrong: the server still answers, SETUP_FAILED."""

    name = "unconfigured"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def load(self) -> None:
        raise SetupError(self.reason)
