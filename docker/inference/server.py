"""Fleet's `http` inference contract over the standard library (no pip packages on GPU boxes).

  GET  /health-check                 {status: READY|BUSY|STARTING|SETUP_FAILED, engine, ...}, always 200
  PUT  /predictions/{id}             {input: {video_path, audio_path, output_path, ...}}
                                     202 + the new prediction, or 200 + the existing one (idempotent)
  GET  /predictions/{id}             the prediction: status, progress, phase, output, error, metrics
  POST /predictions/{id}/cancel      asks the run to stop; 200 + the prediction
  GET  /avatars/{sha256}             {video_sha256, answer: have_it|send_it}: whether a PUT may name
                                     the avatar by video_sha256 alone, without video_path

Shapes are packages/contract/src/inference-api.ts. Errors use Fleet's one error body
{error: {code, message, request_id, details?}}. Run: python3 server.py (env in README.md).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from engine import BrokenEngine, Engine, SetupError, env_flag  # noqa: E402
from service import InferenceService, QueueFull, ServiceConfig  # noqa: E402

AVATAR_PATH = re.compile(r"^/avatars/([^/]*)/?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PREDICTION_PATH = re.compile(r"^/predictions/([A-Za-z0-9][A-Za-z0-9._-]{0,199})(/cancel)?/?$")
MAX_BODY_BYTES = 1 << 20
LEVELS = {"debug": 20, "info": 30, "warn": 40, "error": 50}


# -- configuration --------------------------------------------------------------------------------

class ConfigError(Exception):
    pass


@dataclass
class ServerConfig:
    host: str
    port: int
    engine: str
    log_level: str
    service: ServiceConfig


def load_config(env: Mapping[str, str]) -> ServerConfig:
    """Read the environment once; a wrong value exits with a message naming the variable."""

    def number(name: str, default: str, cast: Callable[[str], Any], minimum: float = 0) -> Any:
        raw = env.get(name) or default
        try:
            value = cast(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
        return value

    def flag(name: str, default: bool) -> bool:
        try:
            return env_flag(env, name, default)
        except SetupError as exc:
            raise ConfigError(str(exc)) from None

    engine = env.get("INFERENCE_ENGINE") or "musetalk"
    if engine not in ("musetalk", "fake", "standin"):
        raise ConfigError(f"INFERENCE_ENGINE must be musetalk, fake or standin, got {engine!r}")
    level = env.get("LOG_LEVEL") or "info"
    if level not in LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    work_root = env.get("INFERENCE_WORK_ROOT") or None
    if work_root is not None and not os.path.isabs(work_root):
        raise ConfigError(f"INFERENCE_WORK_ROOT must be an absolute path, got {work_root!r}")
    return ServerConfig(
        # Loopback by default: the server has no auth, and on a GPU box the worker shares the
        # host network with it (compose.gpu.yaml). Bridge networking needs INFERENCE_HOST=0.0.0.0.
        host=env.get("INFERENCE_HOST") or "127.0.0.1",
        port=number("INFERENCE_PORT", "5000", int),
        engine=engine,
        log_level=level,
        service=ServiceConfig(
            jobs_dir=env.get("INFERENCE_JOBS_DIR") or os.path.join(tempfile.gettempdir(), "fleet-inference"),
            work_root=work_root,
            default_batch_size=number("BATCH_SIZE", "8", int, 1),
            max_queue=number("INFERENCE_MAX_QUEUE", "4", int, 0),
            job_timeout_sec=number("INFERENCE_JOB_TIMEOUT_SEC", "3600", float, 1),
            cancel_grace_sec=number("INFERENCE_CANCEL_GRACE_SEC", "30", float, 0),
            keep_finished=number("INFERENCE_KEEP_FINISHED", "500", int, 1),
            keep_failed_dirs=flag("INFERENCE_KEEP_FAILED_DIRS", False),
        ),
    )


def make_logger(level: str, stream=sys.stdout) -> Callable[..., None]:
    """The Node apps' JSON line shape: level label, ISO time, service, fields, event name in msg."""
    threshold = LEVELS[level]
    lock = threading.Lock()
    host = socket.gethostname()

    def log(lvl: str, msg: str, **fields: Any) -> None:
        if LEVELS[lvl] < threshold:
            return
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = {"level": lvl, "time": now, "pid": os.getpid(), "hostname": host, "service": "fleet-inference",
                  **{k: v for k, v in fields.items() if v is not None}, "msg": msg}
        line = json.dumps(record, default=str)
        with lock:
            stream.write(line + "\n")
            stream.flush()

    return log


# -- input validation -----------------------------------------------------------------------------

def validate_request(body: Any, work_root: Optional[str]) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, str]]]:
    """The contract's PredictionRequest, checked by hand (zod's rules, no zod)."""
    issues: List[Dict[str, str]] = []
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return None, [{"path": "input", "message": "expected an object"}]
    raw = body["input"]
    clean: Dict[str, Any] = {}
    sha = raw.get("video_sha256")
    if sha is not None:
        if not isinstance(sha, str) or not SHA256.match(sha):
            issues.append({"path": "input.video_sha256", "message": "expected 64 lowercase hex digits"})
        else:
            clean["video_sha256"] = sha
    for name in ("video_path", "audio_path", "output_path"):
        value = raw.get(name)
        if name == "video_path" and value is None and isinstance(sha, str):
            continue  # named by hash only: the engine said it keeps this avatar prepared
        if not isinstance(value, str) or not value:
            issues.append({"path": f"input.{name}", "message": "expected a non-empty string"})
        elif not os.path.isabs(value):
            issues.append({"path": f"input.{name}", "message": "expected an absolute path"})
        elif work_root and not _inside(value, work_root):
            issues.append({"path": f"input.{name}", "message": f"must be inside {work_root} (the shared work volume)"})
        else:
            clean[name] = value
    for name in ("aspect_ratio", "resolution"):
        value = raw.get(name)
        if not isinstance(value, str):
            issues.append({"path": f"input.{name}", "message": "expected a string"})
        else:
            clean[name] = value
    params = raw.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        issues.append({"path": "input.params", "message": "expected an object"})
    clean["params"] = params
    batch = raw.get("batch_size")
    if batch is not None:
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 64:
            issues.append({"path": "input.batch_size", "message": "expected an integer from 1 to 64"})
        else:
            clean["batch_size"] = batch
    return (None, issues) if issues else (clean, [])


def _inside(path: str, root: str) -> bool:
    real_root = os.path.realpath(root)
    # The output does not exist yet: resolve its directory, which the worker created.
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    return os.path.commonpath([real, real_root]) == real_root


# -- HTTP -----------------------------------------------------------------------------------------

def make_handler(service: InferenceService, work_root: Optional[str], log: Callable[..., None]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "fleet-inference/1"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path in ("/health-check", "/health-check/"):
                return self._send(200, service.health())
            avatar = AVATAR_PATH.match(path)
            if avatar:
                if not SHA256.match(avatar.group(1)):
                    return self._error(400, "invalid_request", "expected /avatars/{sha256}: 64 lowercase hex digits",
                                       details=[{"path": "sha256", "message": "expected 64 lowercase hex digits"}])
                return self._send(200, service.avatar(avatar.group(1)))
            match = PREDICTION_PATH.match(path)
            if match and not match.group(2):
                prediction = service.get(match.group(1))
                if prediction is None:
                    return self._error(404, "not_found", f"no prediction {match.group(1)}")
                return self._send(200, prediction)
            self._error(404, "not_found", f"no route GET {path}")

        def do_PUT(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            match = PREDICTION_PATH.match(path)
            if not match or match.group(2):
                return self._error(404, "not_found", f"no route PUT {path}")
            body = self._read_json()
            if body is _INVALID:
                return None
            clean, issues = validate_request(body, work_root)
            if clean is None:
                return self._error(400, "invalid_request", "invalid prediction request", details=issues)
            try:
                prediction, created = service.submit(match.group(1), clean)
            except QueueFull as exc:
                return self._error(503, "service_unavailable", str(exc), headers={"Retry-After": "5"})
            self._send(202 if created else 200, prediction)

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            match = PREDICTION_PATH.match(path)
            if not match or not match.group(2):
                return self._error(404, "not_found", f"no route POST {path}")
            self._drain_body()
            prediction = service.cancel(match.group(1))
            if prediction is None:
                return self._error(404, "not_found", f"no prediction {match.group(1)}")
            self._send(200, prediction)

        def _read_json(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._error(413, "payload_too_large", f"body over {MAX_BODY_BYTES} bytes")
                self.close_connection = True
                return _INVALID
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"null")
            except ValueError:
                self._error(400, "invalid_request", "body is not JSON")
                return _INVALID

        def _drain_body(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if 0 < length <= MAX_BODY_BYTES:
                self.rfile.read(length)

        def _error(self, status: int, code: str, message: str, details: Optional[List[Dict[str, str]]] = None,
                   headers: Optional[Dict[str, str]] = None) -> None:
            error: Dict[str, Any] = {"code": code, "message": message, "request_id": self._request_id()}
            if details:
                error["details"] = details
            self._send(status, {"error": error}, headers)

        def _request_id(self) -> str:
            if not hasattr(self, "_rid"):
                self._rid = self.headers.get("X-Request-Id") or uuid.uuid4().hex
            return self._rid

        def _send(self, status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-Id", self._request_id())
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log("debug", "http_request", line=format % args)

    return Handler


_INVALID = object()


def build_engine(config: ServerConfig, env: Mapping[str, str]) -> Engine:
    """The configured engine; wrong engine settings give one that reports SETUP_FAILED with the
    reason (the variable named) instead of a process that exits before anyone can ask why."""
    try:
        if config.engine == "fake":
            from fake_engine import FakeEngine
            return FakeEngine.from_env(dict(env))
        if config.engine == "standin":
            from musetalk_engine import StandInMuseTalkEngine
            return StandInMuseTalkEngine.from_env(dict(env))
        from musetalk_engine import MuseTalkEngine
        return MuseTalkEngine.from_env(dict(env))
    except (SetupError, ValueError) as exc:
        return BrokenEngine(str(exc))


def capture_plain_output(level: str) -> Callable[..., None]:
    """Route everything written to stdout/stderr (MuseTalk's and mmengine's prints, tqdm bars,
    warnings, native libraries) through the JSON log, so the stdout stream stays JSON lines.

    Returns the logger, which writes to a duplicate of the original stdout."""
    sys.stdout.flush()
    real_out = os.fdopen(os.dup(1), "w", buffering=1)
    log = make_logger(level, stream=real_out)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for raw in lines:
                # tqdm redraws with carriage returns: keep the last state of the line.
                text = raw.decode(errors="replace").rstrip("\r\n").split("\r")[-1].strip()
                if text:
                    log("info", "engine_output", line=text[:2000])

    threading.Thread(target=pump, name="plain-output", daemon=True).start()
    return log


def serve(service: InferenceService, host: str, port: int, log: Callable[..., None]) -> ThreadingHTTPServer:
    """Bind and start answering in a background thread; the caller owns shutdown."""
    httpd = ThreadingHTTPServer((host, port), make_handler(service, service.config.work_root, log))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    return httpd


def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"inference server: configuration error: {exc}", file=sys.stderr)
        return 2
    # Handlers first: a SIGTERM that arrives while the engine loads (or as soon as it failed to)
    # still stops the server cleanly.
    stop = threading.Event()
    signals_seen = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            os._exit(1)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log = capture_plain_output(config.log_level)
    engine = build_engine(config, os.environ)

    def on_stuck(pid: str) -> None:
        # A wedged CUDA call cannot be interrupted from Python; exiting lets the container's
        # restart policy bring back a clean process with the models loaded again.
        # The few seconds' delay lets the worker read the prediction's final state first.
        log("error", "inference_exiting_engine_stuck", id=pid, exit_in_sec=5)
        threading.Timer(5.0, os._exit, (3,)).start()

    service = InferenceService(engine, config.service, log, on_stuck)
    httpd = serve(service, config.host, config.port, log)
    log("info", "inference_server_listening", host=config.host, port=httpd.server_address[1],
        engine=engine.name, work_root=config.service.work_root)
    service.start()

    while not stop.wait(1.0):
        pass
    log("info", "inference_server_stopping")
    httpd.shutdown()
    service.stop(wait_sec=config.service.cancel_grace_sec)
    log("info", "inference_server_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
