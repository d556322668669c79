"""The prepared-avatar cache, through the real engine on CPU with stand-in models.

    /usr/bin/python3 -m unittest -v test_avatar_cache

Preparation is observed by counting calls to the stand-in face detector and VAE encoder (one per
source frame), never by timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Dict, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from avatar_cache import AvatarCache, file_sha256  # noqa: E402
from test_engine import EngineCase, make_avatar, make_voice, probe  # noqa: E402


class CacheCase(EngineCase):
    def setUp(self) -> None:
        super().setUp()
        self.cache_root = os.path.join(self.dir, "cache")
        self.engine.cache = AvatarCache(self.cache_root, max_bytes=1 << 30)
        self.voice = os.path.join(self.dir, "voice.wav")
        make_voice(self.voice, 1.0)

    def avatar(self, name: str, seconds: float = 0.4, fps: str = "25") -> str:
        path = os.path.join(self.dir, f"{name}.mp4")
        make_avatar(path, fps, seconds)
        return path

    def prepared_frames(self) -> int:
        return self.models.detector.calls


class PreparedOnce(CacheCase):
    def test_the_second_job_with_the_same_avatar_skips_preparation(self) -> None:
        avatar = self.avatar("a")
        first, _ = self.run_job(self.job(avatar, self.voice))
        self.assertEqual((first["avatar_cache"], self.prepared_frames()), ("miss", 10))
        encoded = len(self.models.vae.encoded)
        # A copy under another name: the key is the bytes, not the path.
        copy = os.path.join(self.dir, "copy.mp4")
        shutil.copy(avatar, copy)
        job = self.job(copy, self.voice)
        second, _ = self.run_job(job)
        self.assertEqual(second["avatar_cache"], "hit")
        self.assertEqual(self.prepared_frames(), 10, "no face detection on the second job")
        self.assertEqual(len(self.models.vae.encoded), encoded, "no VAE encoding on the second job")
        self.assertEqual(self.models.blending.prepared, 10, "masks came from the cache")
        self.assertEqual(probe(job.output_path)["frames"], 25)
        self.assertEqual(second["frames"], first["frames"])
        stats = self.engine.cache_info()
        self.assertEqual((stats["hits"], stats["misses"], stats["hit_rate"], stats["entries"]), (1, 1, 0.5, 1))
        self.assertGreater(stats["bytes"], 0)

    def test_a_cached_avatar_gives_the_same_unet_input_as_a_fresh_one(self) -> None:
        avatar = self.avatar("a")
        self.run_job(self.job(avatar, self.voice))
        fresh = [t.clone() for t in self.models.unet.model.inputs]
        self.models.unet.model.inputs.clear()
        self.run_job(self.job(avatar, self.voice))
        import torch
        self.assertTrue(all(torch.equal(a, b) for a, b in zip(fresh, self.models.unet.model.inputs)))

    def test_a_changed_preparation_setting_misses(self) -> None:
        avatar = self.avatar("a")
        self.run_job(self.job(avatar, self.voice))
        self.engine.extra_margin = 14
        metrics, _ = self.run_job(self.job(avatar, self.voice))
        self.assertEqual(metrics["avatar_cache"], "miss")
        self.engine.bbox_shift = 3
        metrics, _ = self.run_job(self.job(avatar, self.voice))
        self.assertEqual(metrics["avatar_cache"], "miss")
        self.assertEqual(self.prepared_frames(), 30)
        self.assertEqual(self.engine.cache_info()["entries"], 3)

    def test_without_a_cache_every_job_prepares(self) -> None:
        self.engine.cache = None
        avatar = self.avatar("a")
        self.run_job(self.job(avatar, self.voice))
        metrics, _ = self.run_job(self.job(avatar, self.voice))
        self.assertEqual((metrics["avatar_cache"], self.prepared_frames()), ("off", 20))


class Bounded(CacheCase):
    def test_eviction_keeps_the_cache_under_its_byte_bound_least_recently_used_first(self) -> None:
        a, b, c = self.avatar("a"), self.avatar("b", 0.44), self.avatar("c", 0.48)
        self.run_job(self.job(a, self.voice))
        one_entry = self.engine.cache_info()["bytes"]
        # Room for two entries of this size, not three.
        self.engine.cache = AvatarCache(self.cache_root, max_bytes=int(one_entry * 2.6))
        self.run_job(self.job(b, self.voice))
        self.run_job(self.job(a, self.voice))   # a is now more recently used than b
        self.run_job(self.job(c, self.voice))   # over the bound: b goes
        stats = self.engine.cache_info()
        self.assertLessEqual(stats["bytes"], stats["max_bytes"])
        self.assertEqual((stats["entries"], stats["evictions"]), (2, 1))
        calls = self.prepared_frames()
        self.assertEqual(self.run_job(self.job(a, self.voice))[0]["avatar_cache"], "hit")
        self.assertEqual(self.run_job(self.job(b, self.voice))[0]["avatar_cache"], "miss")
        self.assertGreater(self.prepared_frames(), calls)
        self.assertLessEqual(self.engine.cache_info()["bytes"], stats["max_bytes"])

    def test_an_avatar_bigger_than_the_bound_is_used_once_and_not_kept(self) -> None:
        self.engine.cache = AvatarCache(self.cache_root, max_bytes=1000)
        avatar = self.avatar("a")
        job = self.job(avatar, self.voice)
        metrics, _ = self.run_job(job)
        self.assertEqual(metrics["avatar_cache"], "miss")
        self.assertEqual(probe(job.output_path)["frames"], 25)
        self.assertEqual(self.engine.cache_info()["entries"], 0)
        self.assertEqual(os.listdir(os.path.join(self.cache_root, ".tmp")), [])


class Concurrent(CacheCase):
    def test_two_concurrent_predictions_of_one_avatar_prepare_it_once(self) -> None:
        avatar = self.avatar("a")
        second_waiting = threading.Event()
        detect = self.models.detector

        class Watched(AvatarCache):
            calls = 0

            def get_or_prepare(self, *args, **kwargs):  # type: ignore[override]
                Watched.calls += 1
                if Watched.calls == 2:
                    second_waiting.set()
                return super().get_or_prepare(*args, **kwargs)

        self.engine.cache = Watched(self.cache_root, max_bytes=1 << 30)

        def slow_detect(frame):
            # The first prediction holds its preparation until the second one has asked the cache.
            second_waiting.wait(60)
            return detect(frame)
        self.engine.detect = slow_detect
        results, errors = [], []

        def run() -> None:
            try:
                results.append(self.run_job(self.job(avatar, self.voice))[0])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(sorted(r["avatar_cache"] for r in results), ["hit", "miss"])
        self.assertEqual(detect.calls, 10, "prepared once")


class CrashSafe(CacheCase):
    def entry(self) -> str:
        entries = os.path.join(self.cache_root, "entries")
        (key,) = os.listdir(entries)
        return os.path.join(entries, key)

    def test_a_corrupt_data_file_is_detected_and_the_entry_rebuilt(self) -> None:
        avatar = self.avatar("a")
        self.run_job(self.job(avatar, self.voice))
        with open(os.path.join(self.entry(), "avatar.pt"), "r+b") as handle:
            handle.seek(100)
            handle.write(b"\x00garbage\x00")
        metrics, _ = self.run_job(self.job(avatar, self.voice))
        self.assertEqual(metrics["avatar_cache"], "miss")
        self.assertEqual(self.prepared_frames(), 20)
        self.assertEqual(self.engine.cache_info()["corrupt_rebuilt"], 1)
        self.assertEqual(self.run_job(self.job(avatar, self.voice))[0]["avatar_cache"], "hit")

    def test_a_missing_frame_or_manifest_is_detected_and_rebuilt(self) -> None:
        avatar = self.avatar("a")
        self.run_job(self.job(avatar, self.voice))
        frames = os.path.join(self.entry(), "frames")
        os.remove(os.path.join(frames, sorted(os.listdir(frames))[3]))
        self.assertEqual(self.run_job(self.job(avatar, self.voice))[0]["avatar_cache"], "miss")
        os.remove(os.path.join(self.entry(), "manifest.json"))  # a half-written entry
        self.assertEqual(self.run_job(self.job(avatar, self.voice))[0]["avatar_cache"], "miss")
        self.assertEqual(self.engine.cache_info()["corrupt_rebuilt"], 2)

    def test_a_preparation_that_stopped_half_way_leaves_nothing_behind(self) -> None:
        avatar = self.avatar("a", 2.0)
        cancel = threading.Event()
        from engine import Canceled

        def on_progress(_value: float, phase: str) -> None:
            if phase == "preparing":
                cancel.set()
        with self.assertRaises(Canceled):
            self.run_job(self.job(avatar, self.voice), cancel, on_progress)
        self.assertEqual(os.listdir(os.path.join(self.cache_root, "entries")), [])
        self.assertEqual(os.listdir(os.path.join(self.cache_root, ".tmp")), [])
        # A crash (no cleanup at all) leaves a staging directory: the next start sweeps it.
        os.makedirs(os.path.join(self.cache_root, ".tmp", "deadbeef.1234", "frames"))
        AvatarCache(self.cache_root, max_bytes=1 << 30)
        self.assertEqual(os.listdir(os.path.join(self.cache_root, ".tmp")), [])


class ByHash(CacheCase):
    """GET /avatars/{sha256} and a prediction that names the avatar by hash alone, over HTTP."""

    def setUp(self) -> None:
        super().setUp()
        from server import make_logger, serve
        from service import InferenceService, ServiceConfig
        self.engine.load = lambda: None  # type: ignore[method-assign] - the stand-ins are attached
        self.service = InferenceService(self.engine, ServiceConfig(jobs_dir=os.path.join(self.dir, "jobs")),
                                        log=lambda *a, **k: None, on_stuck=lambda pid: None)
        self.httpd = serve(self.service, "127.0.0.1", 0, make_logger("error"))
        self.addCleanup(self.httpd.server_close)
        self.addCleanup(self.httpd.shutdown)
        self.service.start()
        self.addCleanup(self.service.stop, 10.0)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Dict[str, Any]]:
        request = urllib.request.Request(self.base + path, method=method, headers={"Content-Type": "application/json"},
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def predict(self, pid: str, **fields: Any) -> Dict[str, Any]:
        body = {"audio_path": self.voice, "output_path": os.path.join(self.dir, f"{pid}.mp4"),
                "aspect_ratio": "1:1", "resolution": "512x512", **fields}
        self.assertEqual(self.call("PUT", f"/predictions/{pid}", {"input": body})[0], 202)
        deadline = time.monotonic() + 120
        while True:
            prediction = self.call("GET", f"/predictions/{pid}")[1]
            if prediction["status"] in ("succeeded", "failed", "canceled"):
                return prediction
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def answer(self, sha: str) -> str:
        status, body = self.call("GET", f"/avatars/{sha}")
        self.assertEqual((status, body["video_sha256"]), (200, sha))
        return body["answer"]

    def test_send_it_until_prepared_then_have_it_and_a_job_without_the_video_uses_the_entry(self) -> None:
        avatar = self.avatar("a")
        sha = file_sha256(avatar)
        deadline = time.monotonic() + 60
        while self.service.health()["status"] != "READY":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(self.answer(sha), "send_it")
        first = self.predict("first", video_path=avatar, video_sha256=sha)
        self.assertEqual((first["status"], first["metrics"]["avatar_cache"]), ("succeeded", "miss"))
        self.assertEqual(self.answer(sha), "have_it")
        os.remove(avatar)  # the worker downloads nothing: there is no video on the volume at all
        second = self.predict("second", video_sha256=sha)
        self.assertEqual((second["status"], second["metrics"]["avatar_cache"]), ("succeeded", "hit"))
        self.assertEqual(self.prepared_frames(), 10, "the second job prepared nothing")
        self.assertEqual(probe(os.path.join(self.dir, "second.mp4"))["frames"], 25)
        health = self.call("GET", "/health-check")[1]["avatar_cache"]
        self.assertEqual((health["hits"], health["misses"], health["hit_rate"]), (1, 1, 0.5))
        # Other settings make another avatar: the same hash is then "send it".
        self.engine.extra_margin = 14
        self.assertEqual(self.answer(sha), "send_it")
        self.engine.extra_margin = 10
        # Evicted after the worker asked: the job fails retryable, and the next ask says send it.
        self.assertEqual(self.answer(sha), "have_it")
        shutil.rmtree(os.path.join(self.cache_root, "entries"))
        os.makedirs(os.path.join(self.cache_root, "entries"))
        gone = self.predict("gone", video_sha256=sha)
        self.assertEqual((gone["status"], gone["error"]["retryable"], gone["error"]["details"]["cause"]),
                         ("failed", True, "avatar_not_prepared"))
        self.assertEqual(self.answer(sha), "send_it")
        self.assertEqual(self.prepared_frames(), 10)

    def test_a_corrupt_entry_is_not_have_it(self) -> None:
        avatar = self.avatar("a")
        sha = file_sha256(avatar)
        self.run_job(self.job(avatar, self.voice))
        self.assertTrue(self.engine.has_prepared(sha))
        entry = os.path.join(self.cache_root, "entries", os.listdir(os.path.join(self.cache_root, "entries"))[0])
        os.remove(os.path.join(entry, "frames", sorted(os.listdir(os.path.join(entry, "frames")))[0]))
        self.assertFalse(self.engine.has_prepared(sha))

    def test_a_wrong_hash_with_the_video_is_a_media_error_and_caches_nothing(self) -> None:
        avatar = self.avatar("a")
        wrong = hashlib.sha256(b"some other avatar").hexdigest()
        done = self.predict("wrong", video_path=avatar, video_sha256=wrong)
        self.assertEqual((done["status"], done["error"]["error_type"], done["error"]["retryable"]),
                         ("failed", "media_error", False))
        self.assertEqual(self.prepared_frames(), 0)
        self.assertEqual(self.engine.cache_info()["entries"], 0)
        self.assertEqual(self.answer(wrong), "send_it")


class Health(unittest.TestCase):
    def test_health_reports_the_cache_size_and_hit_rate(self) -> None:
        from service import InferenceService, ServiceConfig
        from musetalk_engine import MuseTalkEngine
        from standins import attach_standins
        root = tempfile.mkdtemp(prefix="fleet-cache-health-")
        self.addCleanup(shutil.rmtree, root, True)
        engine = MuseTalkEngine(device="cpu", encoder="libx264", cache_dir=os.path.join(root, "cache"))
        attach_standins(engine, (60, 40, 132, 120))
        engine.load = engine.open_cache  # type: ignore[method-assign] - the models are the stand-ins above
        service = InferenceService(engine, ServiceConfig(jobs_dir=os.path.join(root, "jobs")),
                                   log=lambda *a, **k: None, on_stuck=lambda pid: None)
        service.start()
        self.addCleanup(service.stop)
        import time
        deadline = time.monotonic() + 60
        while service.health()["status"] != "READY":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(service.health()["avatar_cache"],
                         {"bytes": 0, "max_bytes": 20 * 2**30, "entries": 0, "hits": 0, "misses": 0,
                          "hit_rate": None, "evictions": 0, "corrupt_rebuilt": 0})


if __name__ == "__main__":
    unittest.main()
