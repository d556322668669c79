"""The inference server against its contract, with the fake engine: python3 -m unittest -v test_server

Everything is real except the model: HTTP over a socket, ffmpeg making and checking videos,
threads, per-job directories. Steps of the fake engine are released by the test (a semaphore)
so progress and cancel are observed deterministically, never by timing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from engine import MediaError, classify_exception  # noqa: E402
from fake_engine import FakeEngine  # noqa: E402
from server import ConfigError, load_config, make_logger, serve  # noqa: E402
from service import InferenceService, ServiceConfig  # noqa: E402

WAIT_SEC = 60.0


def make_media(directory: str) -> Tuple[str, str]:
    video = os.path.join(directory, "avatar.mp4")
    audio = os.path.join(directory, "voice.wav")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", video], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1.6",
                    audio], check=True)
    return video, audio


def probe_duration(path: str) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


class Gate:
    """Blocks the fake engine before each step until the test releases it."""

    def __init__(self) -> None:
        self.allowed = threading.Semaphore(0)
        self.reached: List[int] = []
        self.open = False

    def __call__(self, step: int) -> None:
        self.reached.append(step)
        if not self.open:
            self.allowed.acquire(timeout=WAIT_SEC)

    def release(self, steps: int = 1) -> None:
        for _ in range(steps):
            self.allowed.release()

    def open_all(self) -> None:
        self.open = True
        self.release(100)


class GatedLoadEngine(FakeEngine):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.load_gate = threading.Event()

    def load(self) -> None:
        self.load_gate.wait(WAIT_SEC)
        super().load()


class ServerCase(unittest.TestCase):
    """One server per test on 127.0.0.1:0, with its own work root."""

    engine: FakeEngine

    def start_server(self, engine: FakeEngine, **service_overrides: Any) -> None:
        self.tmp = tempfile.mkdtemp(prefix="fleet-inference-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.work = os.path.join(self.tmp, "work")
        os.makedirs(self.work)
        self.video, self.audio = make_media(self.work)
        self.engine = engine
        if hasattr(engine, "release_hang"):
            self.addCleanup(engine.release_hang.set)
        self.stuck: List[str] = []
        self.log_stream = io.StringIO()
        settings: Dict[str, Any] = {"cancel_grace_sec": 5.0, **service_overrides}
        config = ServiceConfig(jobs_dir=os.path.join(self.tmp, "jobs"), work_root=self.work, **settings)
        self.service = InferenceService(engine, config, make_logger("debug", self.log_stream), self.stuck.append)
        self.httpd = serve(self.service, "127.0.0.1", 0, make_logger("debug", self.log_stream))
        self.addCleanup(self.httpd.server_close)
        self.addCleanup(self.httpd.shutdown)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.service.start()
        self.addCleanup(self.service.stop, 10.0)

    # -- HTTP helpers -------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Optional[Any] = None) -> Tuple[int, Dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=WAIT_SEC) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def job_input(self, name: str, **overrides: Any) -> Dict[str, Any]:
        out_dir = os.path.join(self.work, name)
        os.makedirs(out_dir, exist_ok=True)
        body = {"video_path": self.video, "audio_path": self.audio, "output_path": os.path.join(out_dir, "out.mp4"),
                "aspect_ratio": "9:16", "resolution": "720p", "params": {}}
        body.update(overrides)
        return {"input": body}

    def put(self, pid: str, **overrides: Any) -> Tuple[int, Dict[str, Any]]:
        return self.call("PUT", f"/predictions/{pid}", self.job_input(pid, **overrides))

    def wait_for(self, what: str, predicate, timeout: float = WAIT_SEC) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        self.fail(f"timed out waiting for {what}")

    def wait_terminal(self, pid: str, seen: Optional[List[str]] = None) -> Dict[str, Any]:
        def done() -> Optional[Dict[str, Any]]:
            _, prediction = self.call("GET", f"/predictions/{pid}")
            if seen is not None:
                seen.append(prediction["status"])
            return prediction if prediction["status"] in ("succeeded", "failed", "canceled") else None
        return self.wait_for(f"{pid} to finish", done)

    def health(self) -> Dict[str, Any]:
        status, body = self.call("GET", "/health-check")
        self.assertEqual(status, 200)
        return body


class HealthAndWarmModel(ServerCase):
    def test_health_is_starting_until_the_models_are_loaded_then_ready(self) -> None:
        engine = GatedLoadEngine()
        self.start_server(engine)
        self.assertEqual(self.health()["status"], "STARTING")
        engine.load_gate.set()
        ready = self.wait_for("READY", lambda: self.health()["status"] == "READY" and self.health())
        self.assertEqual(ready["engine"], "fake")
        self.assertIs(ready["lip_sync"], False)

    def test_models_are_loaded_once_and_stay_warm_across_several_jobs(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        for index in range(3):
            status, created = self.put(f"warm-{index}")
            self.assertEqual(status, 202)
            self.assertEqual(created["status"], "starting")
            done = self.wait_terminal(f"warm-{index}")
            self.assertEqual(done["status"], "succeeded", done)
            self.assertEqual(done["progress"], 1.0)
            output = done["output"]["video_path"]
            self.assertEqual(output, os.path.join(self.work, f"warm-{index}", "out.mp4"))
            self.assertAlmostEqual(probe_duration(output), 1.6, delta=0.25)
            self.assertIn("model_load_sec", done["metrics"])
        self.assertEqual(self.engine.load_calls, 1)
        self.assertEqual(self.engine.run_calls, 3)
        self.assertEqual(os.listdir(os.path.join(self.tmp, "jobs")), [], "per-job directories are removed")

    def test_a_job_submitted_while_loading_runs_once_the_models_are_ready(self) -> None:
        engine = GatedLoadEngine(step_sec=0)
        self.start_server(engine)
        status, _ = self.put("early")
        self.assertEqual(status, 202)
        engine.load_gate.set()
        self.assertEqual(self.wait_terminal("early")["status"], "succeeded")
        self.assertEqual(engine.load_calls, 1)


class ProgressAndCancel(ServerCase):
    def test_progress_rises_step_by_step_while_a_job_runs_and_never_goes_back(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=4, step_hook=gate))
        self.put("progress")
        observed: List[float] = []
        for step in range(4):
            self.wait_for(f"step {step}", lambda: step in gate.reached)
            _, running = self.call("GET", "/predictions/progress")
            self.assertEqual(running["status"], "processing")
            observed.append(running["progress"])
            gate.release()
            self.wait_for("progress to move", lambda: self.call("GET", "/predictions/progress")[1]["progress"] > observed[-1])
        done = self.wait_terminal("progress")
        observed.append(done["progress"])
        self.assertEqual(observed, sorted(observed))
        self.assertEqual(len(set(observed)), len(observed), observed)
        self.assertTrue(all(0 < value < 1 for value in observed[:-1]), observed)
        self.assertEqual(observed[-1], 1.0)
        # The runner frees itself just after the job's final state is published.
        self.wait_for("READY", lambda: self.health()["status"] == "READY")

    def test_cancel_stops_a_running_job_between_steps_and_leaves_no_output(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=6, step_hook=gate))
        self.put("cancel-me")
        self.wait_for("step 0", lambda: 0 in gate.reached)
        gate.release()
        self.wait_for("step 1", lambda: 1 in gate.reached)
        self.assertEqual(self.health()["status"], "BUSY")
        status, body = self.call("POST", "/predictions/cancel-me/cancel")
        self.assertEqual(status, 200)
        self.assertEqual(body["id"], "cancel-me")
        gate.open_all()
        done = self.wait_terminal("cancel-me")
        self.assertEqual(done["status"], "canceled")
        self.assertIsNone(done["output"])
        self.assertFalse(os.path.exists(os.path.join(self.work, "cancel-me", "out.mp4")))
        self.assertLess(len(gate.reached), 6, "the engine stopped before its last step")
        # The GPU runner is free again.
        self.put("after-cancel")
        self.assertEqual(self.wait_terminal("after-cancel")["status"], "succeeded")

    def test_a_queued_job_is_canceled_at_once_and_never_runs(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=2, step_hook=gate))
        self.put("first")
        self.wait_for("first to run", lambda: 0 in gate.reached)
        status, queued = self.put("second")
        self.assertEqual((status, queued["status"], queued["phase"]), (202, "starting", "queued"))
        _, canceled = self.call("POST", "/predictions/second/cancel")
        self.assertEqual(canceled["status"], "canceled")
        gate.open_all()
        self.assertEqual(self.wait_terminal("first")["status"], "succeeded")
        self.assertEqual(self.engine.run_calls, 1)

    def test_a_second_job_waits_for_the_gpu_and_runs_after_the_first(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=2, step_hook=gate))
        self.put("one")
        self.wait_for("one to run", lambda: 0 in gate.reached)
        self.put("two")
        _, two = self.call("GET", "/predictions/two")
        self.assertEqual(two["status"], "starting")
        gate.open_all()
        self.assertEqual(self.wait_terminal("one")["status"], "succeeded")
        self.assertEqual(self.wait_terminal("two")["status"], "succeeded")

    def test_a_full_queue_answers_503_instead_of_piling_up_work(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=1, step_hook=gate), max_queue=1)
        self.put("running")
        self.wait_for("running", lambda: 0 in gate.reached)
        self.assertEqual(self.put("waiting")[0], 202)
        status, body = self.put("refused")
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["code"], "service_unavailable")
        self.assertEqual(self.call("GET", "/predictions/refused")[0], 404)
        gate.open_all()
        self.wait_terminal("waiting")

    def test_an_engine_that_ignores_cancel_is_abandoned_and_the_server_asks_for_a_restart(self) -> None:
        self.start_server(FakeEngine(step_sec=0, steps=4), cancel_grace_sec=0.2)
        self.put("wedged", params={"fake_mode": "hang"})
        self.wait_for("the hang", lambda: self.call("GET", "/predictions/wedged")[1]["progress"] >= 0.4)
        self.call("POST", "/predictions/wedged/cancel")
        done = self.wait_terminal("wedged")
        self.assertEqual(done["status"], "canceled")
        self.wait_for("on_stuck", lambda: self.stuck == ["wedged"])
        health = self.health()
        self.assertEqual(health["status"], "SETUP_FAILED")
        self.assertIn("restart", health["detail"])
        _, refused = self.put("after-hang")
        self.assertEqual(refused["status"], "failed")
        self.assertEqual((refused["error"]["error_type"], refused["error"]["retryable"]), ("processing_error", True))

    def test_a_job_over_its_time_limit_fails_as_retryable(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=3, step_hook=gate), job_timeout_sec=0.3)
        self.put("too-long")
        self.wait_for("the first step", lambda: 0 in gate.reached)
        # The gate holds the engine past the limit; released, it sees the cancel and stops.
        self.wait_for("the timeout", lambda: self.service._predictions["too-long"].cancel.is_set())
        gate.open_all()
        done = self.wait_terminal("too-long")
        self.assertEqual(done["status"], "failed")
        self.assertEqual((done["error"]["error_type"], done["error"]["retryable"]), ("processing_error", True))
        self.assertIn("did not finish", done["error"]["message"])


class Failures(ServerCase):
    def run_failing(self, pid: str, **overrides: Any) -> Tuple[Dict[str, Any], List[str]]:
        seen: List[str] = []
        self.put(pid, **overrides)
        return self.wait_terminal(pid, seen), seen

    def test_cuda_out_of_memory_is_a_retryable_processing_error_and_the_server_keeps_going(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        done, _ = self.run_failing("oom", params={"fake_mode": "oom"})
        self.assertEqual(done["status"], "failed")
        self.assertEqual(done["error"]["error_type"], "processing_error")
        self.assertEqual(done["error"]["stage"], "inference")
        self.assertIs(done["error"]["retryable"], True)
        self.assertIn("out of memory", done["error"]["message"].lower())
        self.assertEqual(self.engine.after_failure_calls, 1, "the CUDA cache is released after a failure")
        self.assertEqual(self.health()["status"], "READY")
        self.put("after-oom")
        self.assertEqual(self.wait_terminal("after-oom")["status"], "succeeded")
        self.assertEqual(self.engine.load_calls, 1)

    def test_no_face_is_a_media_error_that_is_not_retried(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        done, _ = self.run_failing("no-face", params={"fake_mode": "no_face"})
        self.assertEqual((done["status"], done["error"]["error_type"]), ("failed", "media_error"))
        self.assertIs(done["error"]["retryable"], False)
        self.assertIn("no face", done["error"]["message"])

    def test_an_undecodable_video_is_a_media_error(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        garbage = os.path.join(self.work, "garbage.mp4")
        with open(garbage, "wb") as handle:
            handle.write(os.urandom(4096))
        done, _ = self.run_failing("garbage", video_path=garbage)
        self.assertEqual((done["status"], done["error"]["error_type"]), ("failed", "media_error"))
        self.assertEqual(done["error"]["stage"], "validation")
        self.assertIs(done["error"]["retryable"], False)

    def test_a_failing_or_hollow_run_is_never_reported_succeeded(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        for mode in ("fail", "empty_output", "no_output"):
            with self.subTest(mode=mode):
                done, seen = self.run_failing(f"bad-{mode.replace('_', '-')}", params={"fake_mode": mode})
                self.assertNotIn("succeeded", seen)
                self.assertEqual(done["status"], "failed")
                self.assertEqual(done["error"]["error_type"], "processing_error")
                self.assertEqual(done["error"]["stage"], "postprocessing")
                self.assertIsNone(done["output"])
                self.assertLess(done["progress"], 1.0)
                self.assertFalse(os.path.exists(self.job_input(f"bad-{mode.replace('_', '-')}")["input"]["output_path"]))

    def test_inputs_missing_from_the_shared_volume_fail_with_a_hint(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        done, _ = self.run_failing("unshared", video_path=os.path.join(self.work, "nowhere.mp4"))
        self.assertEqual(done["error"]["error_type"], "processing_error")
        self.assertIn("same path", done["error"]["message"])

    def test_a_job_the_server_cannot_even_prepare_fails_and_the_runner_keeps_serving(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        jobs_dir = os.path.join(self.tmp, "jobs")
        shutil.rmtree(jobs_dir)
        with open(jobs_dir, "w") as blocker:  # the per-job directory cannot be created under a file
            blocker.write("not a directory")
        done, _ = self.run_failing("unpreparable")
        self.assertEqual(done["status"], "failed")
        os.remove(jobs_dir)
        os.makedirs(jobs_dir)
        self.put("prepared")
        self.assertEqual(self.wait_terminal("prepared")["status"], "succeeded")

    def test_a_failed_setup_is_reported_and_every_job_fails_retryable(self) -> None:
        self.start_server(FakeEngine(fail_load=True))
        health = self.wait_for("SETUP_FAILED", lambda: (h := self.health())["status"] == "SETUP_FAILED" and h)
        self.assertIn("FAKE_ENGINE_FAIL_LOAD", health["detail"])
        _, prediction = self.put("doomed")
        self.assertEqual(prediction["status"], "failed")
        self.assertIs(prediction["error"]["retryable"], True)

    def test_unknown_exceptions_are_unknown_errors_and_oom_text_is_recognised(self) -> None:
        self.assertEqual(classify_exception(ValueError("boom"), "inference")["error_type"], "unknown_error")
        oom = classify_exception(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), "inference")
        self.assertEqual((oom["error_type"], oom["retryable"]), ("processing_error", True))


class Contract(ServerCase):
    def test_put_is_idempotent_by_id_and_never_starts_a_second_run(self) -> None:
        gate = Gate()
        self.start_server(FakeEngine(step_sec=0, steps=2, step_hook=gate))
        first_status, first = self.put("same")
        again_status, again = self.put("same", output_path=os.path.join(self.work, "same", "other.mp4"))
        self.assertEqual((first_status, again_status), (202, 200))
        self.assertEqual(again["id"], first["id"])
        gate.open_all()
        done = self.wait_terminal("same")
        self.assertEqual(done["output"]["video_path"], os.path.join(self.work, "same", "out.mp4"))
        status, after = self.put("same")
        self.assertEqual((status, after["status"]), (200, "succeeded"))
        self.assertEqual(self.engine.run_calls, 1)

    def test_a_playlist_or_concat_list_as_input_is_a_media_error_before_decoding(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        listing = os.path.join(self.work, "list.mp4")
        with open(listing, "w") as handle:
            handle.write(f"ffconcat version 1.0\nfile '{os.path.basename(self.video)}'\n")
        self.assertEqual(self.put("concat", video_path=listing)[0], 202)
        done = self.wait_terminal("concat")
        self.assertEqual((done["status"], done["error"]["error_type"], done["error"]["retryable"]),
                         ("failed", "media_error", False))
        self.assertIn("'concat' is not accepted", done["error"]["message"])

    def test_bad_requests_are_refused_with_fleet_error_bodies(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        status, body = self.call("PUT", "/predictions/x", {"input": {"video_path": "relative.mp4"}})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["code"], "invalid_request")
        paths = {issue["path"] for issue in body["error"]["details"]}
        self.assertTrue({"input.video_path", "input.audio_path", "input.output_path", "input.resolution"} <= paths)
        status, body = self.put("outside", output_path="/etc/passwd")
        self.assertEqual(status, 400)
        self.assertIn("shared work volume", json.dumps(body))
        self.assertEqual(self.call("GET", "/predictions/unknown")[0], 404)
        self.assertEqual(self.call("POST", "/predictions/unknown/cancel")[0], 404)
        self.assertEqual(self.call("GET", "/nope")[1]["error"]["code"], "not_found")
        self.assertEqual(self.put("bad", batch_size=0)[0], 400)

    def test_config_errors_name_the_variable(self) -> None:
        with self.assertRaisesRegex(ConfigError, "INFERENCE_PORT"):
            load_config({"INFERENCE_PORT": "http"})
        with self.assertRaisesRegex(ConfigError, "INFERENCE_ENGINE"):
            load_config({"INFERENCE_ENGINE": "gpu"})
        config = load_config({"INFERENCE_ENGINE": "fake", "BATCH_SIZE": "4"})
        self.assertEqual((config.host, config.port, config.service.default_batch_size), ("127.0.0.1", 5000, 4))

    def test_booleans_accept_only_true_false_1_and_0_like_the_node_apps(self) -> None:
        self.assertTrue(load_config({"INFERENCE_KEEP_FAILED_DIRS": "1"}).service.keep_failed_dirs)
        self.assertFalse(load_config({"INFERENCE_KEEP_FAILED_DIRS": ""}).service.keep_failed_dirs)
        for bad in ("yes", "on", "TRUE"):
            with self.assertRaisesRegex(ConfigError, "INFERENCE_KEEP_FAILED_DIRS must be true, false, 1 or 0"):
                load_config({"INFERENCE_KEEP_FAILED_DIRS": bad})


class AvatarByHash(ServerCase):
    """GET /avatars/{sha256} and predictions that name the video's hash, with an engine that has
    no avatar cache (test_avatar_cache.py has the engine that keeps avatars)."""

    def sha(self) -> str:
        with open(self.video, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()

    def test_an_engine_without_a_cache_always_answers_send_it_and_bad_hashes_are_400(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        self.wait_for("READY", lambda: self.health()["status"] == "READY")
        self.assertEqual(self.call("GET", f"/avatars/{self.sha()}"), (200, {"video_sha256": self.sha(), "answer": "send_it"}))
        for bad in ("abc", self.sha().upper(), "g" * 64, self.sha() + "0"):
            status, body = self.call("GET", f"/avatars/{bad}")
            self.assertEqual((status, body["error"]["code"]), (400, "invalid_request"), bad)
        status, body = self.put("bad-hash", video_sha256="xyz")
        self.assertEqual((status, body["error"]["details"][0]["path"]), (400, "input.video_sha256"))
        status, body = self.call("PUT", "/predictions/no-video", {"input": {**self.job_input("no-video")["input"], "video_path": None}})
        self.assertEqual(status, 400, "neither a video nor its hash")
        self.assertEqual(self.engine.run_calls, 0)

    def test_the_right_hash_runs_and_a_wrong_one_is_a_media_error_that_leaves_nothing_behind(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        self.assertEqual(self.put("right", video_sha256=self.sha())[0], 202)
        self.assertEqual(self.wait_terminal("right")["status"], "succeeded")
        wrong = hashlib.sha256(b"another video").hexdigest()
        self.assertEqual(self.put("wrong", video_sha256=wrong)[0], 202)
        done = self.wait_terminal("wrong")
        self.assertEqual((done["status"], done["error"]["error_type"], done["error"]["stage"], done["error"]["retryable"]),
                         ("failed", "media_error", "validation", False))
        self.assertEqual(done["error"]["details"]["cause"], "video_sha256_mismatch")
        self.assertEqual(done["error"]["details"]["actual_sha256"], self.sha())
        self.assertEqual(self.engine.run_calls, 1, "the engine never saw the mismatched job")
        self.assertFalse(os.path.exists(self.job_input("wrong")["input"]["output_path"]))
        self.assertEqual(os.listdir(os.path.join(self.tmp, "jobs")), [])

    def test_a_hash_alone_for_an_avatar_the_engine_does_not_keep_fails_retryable(self) -> None:
        self.start_server(FakeEngine(step_sec=0))
        body = self.job_input("by-hash", video_sha256=self.sha())
        del body["input"]["video_path"]
        self.assertEqual(self.call("PUT", "/predictions/by-hash", body)[0], 202)
        done = self.wait_terminal("by-hash")
        self.assertEqual((done["status"], done["error"]["error_type"], done["error"]["retryable"]),
                         ("failed", "processing_error", True))
        self.assertEqual(done["error"]["details"]["cause"], "avatar_not_prepared")
        self.assertEqual(self.engine.run_calls, 0)


class Process(unittest.TestCase):
    def start(self, **extra: str) -> Tuple[subprocess.Popen, str, str]:
        tmp = tempfile.mkdtemp(prefix="fleet-inference-proc-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = {**os.environ, "INFERENCE_ENGINE": "fake", "INFERENCE_PORT": "0", "INFERENCE_WORK_ROOT": tmp,
               "INFERENCE_JOBS_DIR": os.path.join(tmp, "jobs"), "FAKE_ENGINE_STEP_SEC": "0", **extra}
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.stderr.close)
        port = None
        for line in proc.stdout:
            record = json.loads(line)
            if record["msg"] == "inference_server_listening":
                port = record["port"]
                break
        self.assertIsNotNone(port)
        return proc, f"http://127.0.0.1:{port}", tmp

    def get(self, base: str, path: str) -> Dict[str, Any]:
        with urllib.request.urlopen(base + path, timeout=WAIT_SEC) as response:
            return json.loads(response.read())

    def wait_health(self, base: str, status: str) -> Dict[str, Any]:
        deadline = time.monotonic() + WAIT_SEC
        while (health := self.get(base, "/health-check"))["status"] != status:
            self.assertLess(time.monotonic(), deadline, f"server never became {status}: {health}")
            time.sleep(0.05)
        return health

    def test_the_server_process_serves_a_job_and_stops_cleanly_on_sigterm(self) -> None:
        proc, base, tmp = self.start()
        video, audio = make_media(tmp)
        self.wait_health(base, "READY")
        deadline = time.monotonic() + WAIT_SEC
        body = json.dumps({"input": {"video_path": video, "audio_path": audio, "output_path": os.path.join(tmp, "o.mp4"),
                                     "aspect_ratio": "1:1", "resolution": "512x512"}}).encode()
        urllib.request.urlopen(urllib.request.Request(base + "/predictions/p1", data=body, method="PUT"), timeout=WAIT_SEC).read()
        while self.get(base, "/predictions/p1")["status"] not in ("succeeded", "failed", "canceled"):
            self.assertLess(time.monotonic(), deadline, "prediction never finished")
            time.sleep(0.05)
        self.assertEqual(self.get(base, "/predictions/p1")["status"], "succeeded")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=WAIT_SEC), 0)
        rest = proc.stdout.read()
        self.assertIn("inference_server_stopped", rest)

    def test_plain_prints_from_the_engine_become_json_log_lines(self) -> None:
        proc, base, _tmp = self.start()
        self.wait_health(base, "READY")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=WAIT_SEC), 0)
        records = [json.loads(line) for line in proc.stdout.read().splitlines()]  # every line is JSON
        printed = [r for r in records if r["msg"] == "engine_output"]
        self.assertTrue(any("fake engine: models loaded" in r["line"] for r in printed), records)
        self.assertEqual(proc.stderr.read(), "", "nothing bypasses the JSON log")

    def test_a_non_numeric_engine_setting_is_setup_failed_naming_the_variable(self) -> None:
        for engine, name in (("fake", "FAKE_ENGINE_STEPS"), ("musetalk", "MUSETALK_FPS"),
                             ("musetalk", "INFERENCE_MAX_DURATION_SEC")):
            with self.subTest(name=name):
                proc, base, _tmp = self.start(INFERENCE_ENGINE=engine, **{name: "ten"})
                health = self.wait_health(base, "SETUP_FAILED")
                self.assertIn(name, health["detail"])
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=WAIT_SEC), 0)


class DiskFull(unittest.TestCase):
    def test_a_full_disk_is_a_retryable_processing_error(self) -> None:
        try:
            with open("/dev/full", "wb") as full:
                full.write(b"x" * 65536)
                full.flush()
        except OSError as exc:
            info = classify_exception(exc, stage="preprocessing")
        self.assertEqual((info["error_type"], info["retryable"]), ("processing_error", True))
        self.assertEqual(info["details"]["cause"], "disk_full")

    def test_ffmpeg_running_out_of_disk_is_a_retryable_processing_error(self) -> None:
        from engine import ProcessingError
        from media import run_command
        with self.assertRaises(ProcessingError) as caught:
            run_command(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:duration=2",
                         "-f", "rawvideo", "/dev/full"],
                        threading.Event(), stage="preprocessing", what="frame extraction", error_class=MediaError)
        self.assertTrue(caught.exception.retryable)
        self.assertEqual(caught.exception.to_error_info()["details"]["cause"], "disk_full")


class SignatureCheck(unittest.TestCase):
    """checks/signature_check.py, against a source tree written from its own list of expectations,
    then with one of them broken the way a MuseTalk commit bump could break it."""

    def write_tree(self, root: str) -> None:
        from checks.signature_check import ATTRIBUTES, CALLS, FILES, NAMES
        sources: Dict[str, List[str]] = {}
        classes: Dict[Tuple[str, str], List[str]] = {}
        for relative, dotted, keywords, positional in CALLS:
            params = [f"p{i}" for i in range(positional)] + list(keywords)
            if "." in dotted:
                cls, method = dotted.split(".")
                classes.setdefault((relative, cls), []).append(f"    def {method}(self, {', '.join(params)}): pass")
            elif dotted[0].isupper():
                classes.setdefault((relative, dotted), []).append(f"    def __init__(self, {', '.join(params)}): pass")
            else:
                sources.setdefault(relative, []).append(f"def {dotted}({', '.join(params)}): pass")
        for relative, cls, attribute in ATTRIBUTES:
            classes.setdefault((relative, cls), []).append(f"    def _set_{attribute}(self):\n        self.{attribute} = 1")
        for (relative, cls), body in classes.items():
            sources.setdefault(relative, []).append(f"class {cls}:\n" + "\n".join(body))
        for relative, name in NAMES:
            if not any(line.startswith(f"class {name}:") for line in sources.get(relative, [])):
                sources.setdefault(relative, []).append(f"{name} = None")
        for relative in FILES:
            sources.setdefault(relative, [])
        for relative, lines in sources.items():
            path = os.path.join(root, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write("\n\n".join(lines) + "\n")

    def test_a_source_with_every_name_passes_and_a_renamed_keyword_fails_naming_it(self) -> None:
        from checks.signature_check import check
        root = tempfile.mkdtemp(prefix="fleet-signature-")
        self.addCleanup(shutil.rmtree, root, True)
        self.write_tree(root)
        self.assertEqual(check(root), [])
        path = os.path.join(root, "musetalk/utils/audio_processor.py")
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("audio_padding_length_left", "padding_left"))
        os.remove(os.path.join(root, "musetalk/utils/preprocessing.py"))
        problems = check(root)
        self.assertIn("musetalk/utils/audio_processor.py: AudioProcessor.get_whisper_chunk: "
                      "no keyword argument 'audio_padding_length_left'", problems)
        self.assertTrue(any("preprocessing.py: missing" in p for p in problems), problems)


class MuseTalkEngineWithoutAGpu(ServerCase):
    def test_the_musetalk_engine_reports_setup_failed_where_torch_or_cuda_is_missing(self) -> None:
        from musetalk_engine import MuseTalkEngine
        root = tempfile.mkdtemp(prefix="fake-musetalk-")
        self.addCleanup(shutil.rmtree, root, True)
        os.makedirs(os.path.join(root, "musetalk"))
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        self.start_server(MuseTalkEngine(root=root))  # type: ignore[arg-type]
        health = self.wait_for("SETUP_FAILED", lambda: (h := self.health())["status"] == "SETUP_FAILED" and h)
        # Without torch: the import fails; with torch but no GPU: CUDA is missing, and it says how
        # to run on CPU instead.
        self.assertRegex(health["detail"], "torch|CUDA is not available.*INFERENCE_DEVICE=cpu")
        self.assertEqual(health["engine"], "musetalk-v15")


if __name__ == "__main__":
    unittest.main()
