"""Prediction state and the single GPU runner: the part of the server that has no HTTP in it.

One runner thread takes predictions in arrival order and runs them one at a time, because the
GPU holds one MuseTalk job comfortably and two badly (the original's concurrent runs doubled the
generation time and then collided on a shared file). A PUT while busy is queued, up to
`max_queue` waiting; past that it is refused (HTTP 503) so a misconfigured worker cannot pile
up work the GPU will never reach.
"""

from __future__ import annotations

import collections
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional

from avatar_cache import file_sha256
from engine import Canceled, Engine, Job, MediaError, avatar_not_prepared, classify_exception, is_disk_full
from media import check_output

TERMINAL = ("succeeded", "failed", "canceled")


@dataclass
class ServiceConfig:
    jobs_dir: str
    work_root: Optional[str] = None
    default_batch_size: int = 8
    max_queue: int = 4
    job_timeout_sec: float = 3600.0
    cancel_grace_sec: float = 30.0
    keep_finished: int = 500
    keep_failed_dirs: bool = False


class QueueFull(Exception):
    pass


class Prediction:
    def __init__(self, pid: str, input_: Dict[str, Any]) -> None:
        self.id = pid
        self.input = input_
        self.status = "starting"
        self.progress = 0.0
        self.phase: Optional[str] = "queued"
        self.output: Optional[Dict[str, str]] = None
        self.error: Optional[Dict[str, Any]] = None
        self.metrics: Optional[Dict[str, Any]] = None
        self.created_at = time.time()
        self.started_at: Optional[float] = None
        self.completed_at: Optional[float] = None
        self.cancel = threading.Event()
        self.timed_out = False

    def view(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "progress": round(self.progress, 4),
            "phase": self.phase,
            "output": self.output,
            "error": self.error,
            "metrics": self.metrics,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
        }


class InferenceService:
    def __init__(self, engine: Engine, config: ServiceConfig, log: Callable[..., None],
                 on_stuck: Callable[[str], None]) -> None:
        self.engine = engine
        self.engine.log = log
        self.config = config
        self.log = log
        self.on_stuck = on_stuck
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._predictions: "collections.OrderedDict[str, Prediction]" = collections.OrderedDict()
        self._queue: Deque[str] = collections.deque()
        self._running: Optional[str] = None
        self._state = "STARTING"
        self._detail: Optional[str] = None
        self._stopping = False
        self._started_at = time.time()
        self._load_sec: Optional[float] = None
        self._runner = threading.Thread(target=self._run_loop, name="gpu-runner", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        os.makedirs(self.config.jobs_dir, exist_ok=True)
        self._runner.start()

    def stop(self, wait_sec: float = 30.0) -> None:
        with self._lock:
            self._stopping = True
            for pid in list(self._queue) + ([self._running] if self._running else []):
                self._predictions[pid].cancel.set()
            self._wake.notify_all()
        self._runner.join(timeout=wait_sec)

    def health(self) -> Dict[str, Any]:
        with self._lock:
            state = self._state
            if state == "READY" and (self._running or self._queue):
                state = "BUSY"
            return {
                "status": state,
                "engine": self.engine.name,
                "version": self.engine.version,
                "lip_sync": self.engine.lip_sync,
                "detail": self._detail,
                "gpu": self.engine.gpu_info() if self._state == "READY" else None,
                "avatar_cache": self.engine.cache_info() if self._state == "READY" else None,
                "running": self._running,
                "queued": len(self._queue),
                "model_load_sec": self._load_sec,
                "uptime_sec": round(time.time() - self._started_at, 1),
            }

    # -- requests ------------------------------------------------------------------------------

    def avatar(self, video_sha256: str) -> Dict[str, Any]:
        """GET /avatars/{sha256}: `have_it` lets the worker skip downloading the video. An engine
        that is not READY has not opened its cache yet: `send_it`."""
        with self._lock:
            ready = self._state == "READY"
        have = ready and self.engine.has_prepared(video_sha256)
        return {"video_sha256": video_sha256, "answer": "have_it" if have else "send_it"}

    def submit(self, pid: str, input_: Dict[str, Any]) -> "tuple[Dict[str, Any], bool]":
        """Idempotent by id: a known id returns its prediction as it is and starts nothing."""
        with self._lock:
            known = self._predictions.get(pid)
            if known is not None:
                return known.view(), False
            if self._stopping:
                raise QueueFull("the inference server is shutting down")
            waiting = len(self._queue)
            if waiting >= self.config.max_queue:
                raise QueueFull(f"{waiting} predictions already waiting for the GPU")
            prediction = Prediction(pid, input_)
            self._predictions[pid] = prediction
            if self._state == "SETUP_FAILED":
                self._finish(prediction, "failed", error={
                    "error_type": "processing_error", "stage": "inference", "retryable": True,
                    "message": f"inference engine is not ready: {self._detail}", "details": None,
                })
            else:
                self._queue.append(pid)
                self._wake.notify_all()
            self._forget_old()
            self.log("info", "prediction_accepted", id=pid, queued=len(self._queue))
            return prediction.view(), True

    def get(self, pid: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            prediction = self._predictions.get(pid)
            return prediction.view() if prediction else None

    def cancel(self, pid: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            prediction = self._predictions.get(pid)
            if prediction is None:
                return None
            if prediction.status not in TERMINAL:
                prediction.cancel.set()
                if pid in self._queue:
                    self._queue.remove(pid)
                    self._finish(prediction, "canceled")
                self.log("info", "prediction_cancel_requested", id=pid, status=prediction.status)
            return prediction.view()

    # -- the runner ----------------------------------------------------------------------------

    def _run_loop(self) -> None:
        loaded_at = time.monotonic()
        try:
            self.engine.load()
        except BaseException as exc:  # noqa: BLE001 - any load failure is SETUP_FAILED
            self._set_setup_failed(f"{type(exc).__name__}: {exc}", failed_event="engine_setup_failed")
            return
        with self._lock:
            self._load_sec = round(time.monotonic() - loaded_at, 3)
            self._state = "READY"
        self.log("info", "engine_ready", engine=self.engine.name, load_sec=self._load_sec)
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                prediction = self._predictions[self._queue.popleft()]
                self._running = prediction.id
                prediction.status = "processing"
                prediction.phase = "starting"
                prediction.started_at = time.time()
            try:
                stuck = self._run_one(prediction)
            except BaseException as exc:  # noqa: BLE001 - the runner must outlive any one job
                stuck = False
                self.log("error", "prediction_runner_error", id=prediction.id, err=f"{type(exc).__name__}: {exc}")
                with self._lock:
                    if prediction.status not in TERMINAL:
                        self._finish(prediction, "failed", error=classify_exception(exc, stage="preprocessing"))
            with self._lock:
                self._running = None
            if stuck:
                return

    def _run_one(self, prediction: Prediction) -> bool:
        """Run one prediction to a terminal state; True when the engine is wedged."""
        job_dir = os.path.join(self.config.jobs_dir, prediction.id)
        shutil.rmtree(job_dir, ignore_errors=True)
        os.makedirs(job_dir)
        input_ = prediction.input
        job = Job(
            id=prediction.id,
            video_path=input_.get("video_path"),
            video_sha256=input_.get("video_sha256"),
            audio_path=input_["audio_path"],
            output_path=os.path.join(job_dir, "output.mp4"),
            work_dir=job_dir,
            batch_size=int(input_.get("batch_size") or self.config.default_batch_size),
            aspect_ratio=input_.get("aspect_ratio", ""),
            resolution=input_.get("resolution", ""),
            params=dict(input_.get("params") or {}),
        )
        self.log("info", "prediction_started", id=prediction.id, batch_size=job.batch_size)
        outcome: Dict[str, Any] = {}
        missing = [p for p in (job.video_path, job.audio_path) if p is not None and not os.path.isfile(p)]
        if job.video_path is None and not self.engine.has_prepared(str(job.video_sha256)):
            outcome["error"] = avatar_not_prepared(job.video_sha256).to_error_info()
        elif missing:
            outcome["error"] = {
                "error_type": "processing_error", "stage": "preprocessing", "retryable": True,
                "message": "input file not visible to the inference container: mount the work "
                           "volume at the same path in the worker and inference containers",
                "details": {"missing": missing},
            }
        else:
            thread = threading.Thread(
                target=self._engine_thread, args=(prediction, job, outcome), daemon=True,
                name=f"engine-{prediction.id}",
            )
            started = time.monotonic()
            thread.start()
            if self._wait_engine(prediction, thread, started):
                self._abandon(prediction)
                return True
            outcome["inference_sec"] = round(time.monotonic() - started, 3)
        self._settle(prediction, job, outcome)
        if prediction.status == "succeeded" or not self.config.keep_failed_dirs:
            shutil.rmtree(job_dir, ignore_errors=True)
        return False

    def _engine_thread(self, prediction: Prediction, job: Job, outcome: Dict[str, Any]) -> None:
        def progress(value: float, phase: str) -> None:
            with self._lock:
                if prediction.status != "processing":
                    return
                # Never backwards, and never 1.0 before the output has been checked.
                prediction.progress = max(prediction.progress, min(0.99, max(0.0, float(value))))
                prediction.phase = phase

        try:
            if job.video_path is not None and job.video_sha256 is not None:
                self._check_video_hash(job)
            outcome["metrics"] = self.engine.run(job, progress, prediction.cancel) or {}
        except Canceled:
            outcome["canceled"] = True
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an ErrorInfo
            outcome["error"] = classify_exception(exc, stage="inference")
            self.log("warn", "prediction_engine_error", id=prediction.id,
                     error_type=outcome["error"]["error_type"], err=str(exc)[:500])

    @staticmethod
    def _check_video_hash(job: Job) -> None:
        """A named hash must be the file's: a mismatch is the job's fault (wrong hash or wrong
        URL), never retried, and no cache entry is made under a hash that is not the video's."""
        actual = file_sha256(str(job.video_path))
        if actual != job.video_sha256:
            raise MediaError("the video's bytes do not match the job's video_sha256", stage="validation",
                             details={"cause": "video_sha256_mismatch", "video_sha256": job.video_sha256,
                                      "actual_sha256": actual})

    def _wait_engine(self, prediction: Prediction, thread: threading.Thread, started: float) -> bool:
        """Wait for the engine; True when it blew the job timeout or ignored a cancel."""
        cancel_seen: Optional[float] = None
        while thread.is_alive():
            thread.join(timeout=0.2)
            now = time.monotonic()
            if prediction.cancel.is_set() and cancel_seen is None:
                cancel_seen = now
            if cancel_seen is not None and now - cancel_seen > self.config.cancel_grace_sec:
                return thread.is_alive()
            if now - started > self.config.job_timeout_sec and not prediction.timed_out:
                prediction.timed_out = True
                prediction.cancel.set()
                if cancel_seen is None:
                    cancel_seen = now
        return False

    def _settle(self, prediction: Prediction, job: Job, outcome: Dict[str, Any]) -> None:
        if "error" in outcome:
            self.engine.after_failure()
            self._finish_locked(prediction, "failed", error=outcome["error"])
            return
        if prediction.timed_out:
            self._finish_locked(prediction, "failed", error=_timeout_error(self.config.job_timeout_sec))
            return
        if outcome.get("canceled") or prediction.cancel.is_set():
            self._finish_locked(prediction, "canceled")
            return
        problem = check_output(job.output_path)
        disk_full = False
        if problem is None:
            problem, disk_full = _publish(job.output_path, prediction.input["output_path"], prediction.id)
        if problem is not None:
            # A full disk is the box's fault, not the job's: another box may succeed.
            self._finish_locked(prediction, "failed", error={
                "error_type": "processing_error", "stage": "postprocessing", "retryable": disk_full,
                "message": f"engine finished but {problem}",
                "details": {"cause": "disk_full"} if disk_full else None,
            })
            return
        metrics = dict(outcome.get("metrics") or {})
        metrics.setdefault("inference_sec", outcome.get("inference_sec"))
        metrics["queue_sec"] = round((prediction.started_at or 0) - prediction.created_at, 3)
        metrics["model_load_sec"] = self._load_sec
        metrics["engine"] = self.engine.name
        self._finish_locked(prediction, "succeeded", output={"video_path": prediction.input["output_path"]},
                            metrics=metrics)

    def _abandon(self, prediction: Prediction) -> None:
        """The engine thread will not stop: nothing else can use this GPU safely until a restart."""
        if not prediction.timed_out:
            self._finish_locked(prediction, "canceled")
        else:
            self._finish_locked(prediction, "failed", error=_timeout_error(self.config.job_timeout_sec))
        self._set_setup_failed("engine did not stop after cancel or timeout; restart the container",
                               failed_event="engine_stuck")
        self.on_stuck(prediction.id)

    def _set_setup_failed(self, detail: str, failed_event: str) -> None:
        with self._lock:
            self._state = "SETUP_FAILED"
            self._detail = detail
            waiting = [self._predictions[pid] for pid in self._queue]
            self._queue.clear()
            for prediction in waiting:
                self._finish(prediction, "failed", error={
                    "error_type": "processing_error", "stage": "inference", "retryable": True,
                    "message": f"inference engine is not ready: {detail}", "details": None,
                })
        self.log("error", failed_event, detail=detail)

    def _finish_locked(self, prediction: Prediction, status: str, **fields: Any) -> None:
        with self._lock:
            self._finish(prediction, status, **fields)

    def _finish(self, prediction: Prediction, status: str, error: Optional[Dict[str, Any]] = None,
                output: Optional[Dict[str, str]] = None, metrics: Optional[Dict[str, Any]] = None) -> None:
        prediction.status = status
        prediction.error = error
        prediction.output = output
        prediction.metrics = metrics
        prediction.completed_at = time.time()
        prediction.phase = status
        if status == "succeeded":
            prediction.progress = 1.0
        level = "info" if status != "failed" else "warn"
        self.log(level, f"prediction_{status}", id=prediction.id,
                 error_type=(error or {}).get("error_type"), message=(error or {}).get("message"))

    def _forget_old(self) -> None:
        finished: List[str] = [pid for pid, p in self._predictions.items() if p.status in TERMINAL]
        for pid in finished[: max(0, len(finished) - self.config.keep_finished)]:
            del self._predictions[pid]


def _publish(tmp_path: str, output_path: str, pid: str) -> "tuple[Optional[str], bool]":
    """Move the checked output into place atomically: the worker never sees half a file.
    Returns (why it failed or None, whether the disk was full)."""
    staging = None
    try:
        directory = os.path.dirname(output_path) or "."
        os.makedirs(directory, exist_ok=True)
        staging = os.path.join(directory, f".{os.path.basename(output_path)}.{pid}.{uuid.uuid4().hex[:8]}.partial")
        shutil.move(tmp_path, staging)
        os.replace(staging, output_path)
        return None, False
    except OSError as exc:
        if staging is not None and os.path.exists(staging):
            os.remove(staging)
        return f"the output could not be written to {output_path}: {exc}", is_disk_full(exc)


def _timeout_error(timeout_sec: float) -> Dict[str, Any]:
    return {
        "error_type": "processing_error", "stage": "inference", "retryable": True,
        "message": f"inference did not finish within {timeout_sec:.0f}s", "details": None,
    }


def _iso(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
