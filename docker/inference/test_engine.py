"""The real MuseTalk engine module on CPU, with stand-in models of the real shapes (standins.py).

    /usr/bin/python3 -m unittest -v test_engine      (Debian: python3-torch python3-opencv, ffmpeg)

These run in CI and fail, never skip, when torch or OpenCV is missing: they are the only test of
the code between MuseTalk's models before a GPU box runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import cv2  # noqa: F401
    import torch
except ImportError as missing:  # pragma: no cover - a CI setup error, reported as a failure
    raise ImportError(f"test_engine needs Debian's python3-torch and python3-opencv: {missing}") from missing

from engine import Canceled, Job, MediaError  # noqa: E402
from musetalk_engine import MuseTalkEngine, cycle_index, face_box  # noqa: E402
from standins import attach_standins, fixed_landmarks  # noqa: E402

torch.set_num_threads(1)
WIDTH, HEIGHT = 192, 160
FACE = (60, 40, 132, 120)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def make_avatar(path: str, fps: str, seconds: float, black_from: Optional[float] = None) -> None:
    """A gray avatar with a moving pattern; from black_from on, black frames (no face)."""
    source = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={fps}:duration={seconds}"
    if black_from is None:
        ffmpeg("-f", "lavfi", "-i", source, "-c:v", "libx264", "-pix_fmt", "yuv420p", path)
    else:
        ffmpeg("-f", "lavfi", "-i", source,
               "-vf", f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{black_from})'",
               "-c:v", "libx264", "-pix_fmt", "yuv420p", path)


def make_voice(path: str, seconds: float) -> None:
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}", "-ar", "44100", path)


def probe(path: str) -> Dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,nb_read_frames,avg_frame_rate:format=duration", "-of", "json", path],
        capture_output=True, text=True, check=True).stdout
    import json
    data = json.loads(out)
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    audio = [s for s in data["streams"] if s["codec_type"] == "audio"]
    return {"duration": float(data["format"]["duration"]), "frames": int(video["nb_read_frames"]),
            "rate": video["avg_frame_rate"], "has_audio": bool(audio)}


class EngineCase(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fleet-engine-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.engine = MuseTalkEngine(device="cpu", encoder="libx264")
        self.models = attach_standins(self.engine, FACE)
        self.count = 0

    def job(self, video: str, audio: str, batch_size: int = 8) -> Job:
        self.count += 1
        work = os.path.join(self.dir, f"job{self.count}")
        os.makedirs(work)
        return Job(id=f"job{self.count}", video_path=video, audio_path=audio,
                   output_path=os.path.join(work, "output.mp4"), work_dir=work, batch_size=batch_size)

    def run_job(self, job: Job, cancel: Optional[threading.Event] = None,
                on_progress=None) -> Tuple[Dict[str, Any], List[Tuple[float, str]]]:
        seen: List[Tuple[float, str]] = []

        def progress(value: float, phase: str) -> None:
            seen.append((value, phase))
            if on_progress is not None:
                on_progress(value, phase)
        return self.engine.run(job, progress, cancel or threading.Event()), seen


class BoxMath(unittest.TestCase):
    def test_the_box_spans_the_landmarks_and_mirrors_the_nose_to_chin_distance_upwards(self) -> None:
        marks = fixed_landmarks(60, 40, 132, 120)
        self.assertEqual(face_box(marks, [0, 0, 1, 1], bbox_shift=0, extra_margin=0, height=160), (60, 40, 132, 120))

    def test_bbox_shift_moves_the_top_of_the_box_twice_as_far_as_the_midpoint(self) -> None:
        marks = fixed_landmarks(60, 40, 132, 120)
        # Landmark 29 moves down by 5: the mirrored top moves down by 10, the chin stays.
        self.assertEqual(face_box(marks, [0, 0, 1, 1], bbox_shift=5, extra_margin=0, height=160), (60, 50, 132, 120))
        self.assertEqual(face_box(marks, [0, 0, 1, 1], bbox_shift=-5, extra_margin=0, height=160), (60, 30, 132, 120))
        self.assertEqual(marks[29][1], 80, "the caller's landmarks are not modified")

    def test_the_top_never_goes_above_the_frame(self) -> None:
        marks = fixed_landmarks(60, 10, 132, 120)
        self.assertEqual(face_box(marks, [0, 0, 1, 1], bbox_shift=-30, extra_margin=0, height=160)[1], 0)

    def test_extra_margin_extends_the_chin_and_stops_at_the_frame_bottom(self) -> None:
        marks = fixed_landmarks(60, 40, 132, 120)
        self.assertEqual(face_box(marks, [0, 0, 1, 1], 0, extra_margin=10, height=160)[3], 130)
        self.assertEqual(face_box(marks, [0, 0, 1, 1], 0, extra_margin=100, height=160)[3], 160)

    def test_a_landmark_box_off_the_left_edge_falls_back_to_the_detector_box(self) -> None:
        marks = fixed_landmarks(-4, 40, 132, 120)
        self.assertEqual(face_box(marks, [10.7, 20.2, 100.0, 110.9], 0, extra_margin=10, height=160), (10, 20, 100, 120))

    def test_no_detection_means_no_box(self) -> None:
        self.assertIsNone(face_box(fixed_landmarks(60, 40, 132, 120), None, 0, 10, 160))


class FrameCycle(unittest.TestCase):
    def test_output_frames_walk_the_source_forward_then_backward_without_a_jump(self) -> None:
        self.assertEqual([cycle_index(i, 3) for i in range(13)], [0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0])
        self.assertEqual([cycle_index(i, 1) for i in range(3)], [0, 0, 0])


class OutputLength(EngineCase):
    """Whatever the avatar's frame rate, the output runs at 25 fps and as long as the voice."""

    def check_rate(self, rate: str) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, rate, 1.2)
        voice_sec = 2.3
        make_voice(audio, voice_sec)
        job = self.job(video, audio, batch_size=8)
        metrics, _ = self.run_job(job)
        out = probe(job.output_path)
        expected_frames = int(voice_sec * 25)
        self.assertEqual(metrics["frames"], expected_frames)
        self.assertEqual(out["frames"], expected_frames)
        self.assertEqual(out["rate"], "25/1")
        self.assertTrue(out["has_audio"])
        self.assertLessEqual(abs(out["duration"] - voice_sec), 1 / 25 + 0.03, out)
        self.assertEqual(metrics["source_frames"], 30, "1.2 s of avatar at 25 fps, whatever its own rate")
        self.assertEqual(metrics["fps"], 25)
        self.assertEqual(metrics["frames_without_face"], 0)
        # 57 frames in batches of 8: seven full batches and a last one of 1.
        self.assertEqual(self.models.unet.model.batches, [8] * 7 + [1])

    def test_a_25_fps_avatar_gives_a_25_fps_output_as_long_as_the_voice(self) -> None:
        self.check_rate("25")

    def test_a_29_97_fps_avatar_gives_a_25_fps_output_as_long_as_the_voice(self) -> None:
        self.check_rate("30000/1001")

    def test_a_23_976_fps_avatar_gives_a_25_fps_output_as_long_as_the_voice(self) -> None:
        self.check_rate("24000/1001")


class Generation(EngineCase):
    def test_the_unet_sees_each_source_latent_in_forward_and_back_order(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "25", 0.4)
        make_voice(audio, 1.0)
        self.run_job(self.job(video, audio, batch_size=3))
        encoded = self.models.vae.encoded
        self.assertEqual(len(encoded), 10, "one latent per source frame, computed once")
        fed = torch.cat(self.models.unet.model.inputs, dim=0)
        self.assertEqual(fed.shape[0], 25)
        for i in range(25):
            self.assertTrue(torch.equal(fed[i:i + 1], encoded[cycle_index(i, 10)]), f"output frame {i}")

    def test_frames_without_a_face_pass_through_and_are_counted(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "25", 0.8, black_from=0.6)  # 20 frames, the last 5 black
        make_voice(audio, 1.2)
        job = self.job(video, audio)
        metrics, _ = self.run_job(job)
        self.assertEqual(metrics["source_frames"], 20)
        self.assertEqual(metrics["source_frames_without_face"], 5)
        expected = sum(1 for i in range(30) if cycle_index(i, 20) >= 15)
        self.assertEqual(metrics["frames_without_face"], expected)
        self.assertEqual(self.models.blending.blended, 30 - expected)
        self.assertEqual(probe(job.output_path)["frames"], 30)

    def test_masks_are_prepared_once_per_source_frame_not_per_output_frame(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "25", 0.4)
        make_voice(audio, 2.0)
        self.run_job(self.job(video, audio))
        self.assertEqual(self.models.blending.prepared, 10)
        self.assertEqual(self.models.blending.blended, 50)

    def test_an_avatar_with_no_face_anywhere_is_a_media_error(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "25", 0.4, black_from=0)
        make_voice(audio, 0.5)
        with self.assertRaises(MediaError) as caught:
            self.run_job(self.job(video, audio))
        self.assertIn("no face", caught.exception.message)

    def test_cancel_during_inference_stops_the_job_and_writes_no_output(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "25", 0.4)
        make_voice(audio, 3.0)
        cancel = threading.Event()
        job = self.job(video, audio, batch_size=4)

        def on_progress(_value: float, phase: str) -> None:
            if phase == "inference":
                cancel.set()
        with self.assertRaises(Canceled):
            self.run_job(job, cancel, on_progress)
        self.assertEqual(len(self.models.unet.model.batches), 1, "stopped at the next batch")
        self.assertFalse(os.path.exists(job.output_path))

    def test_cancel_during_preparation_stops_the_decoder(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "25", 2.0)
        make_voice(audio, 1.0)
        cancel = threading.Event()
        job = self.job(video, audio)

        def on_progress(_value: float, phase: str) -> None:
            if phase == "preparing":
                cancel.set()
        with self.assertRaises(Canceled):
            self.run_job(job, cancel, on_progress)
        self.assertLess(self.models.detector.calls, 50)
        self.assertEqual(self.models.unet.model.batches, [])

    def test_the_source_frames_are_kept_on_disk_at_the_normalised_rate(self) -> None:
        video, audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(video, "30000/1001", 1.0)
        make_voice(audio, 0.5)
        job = self.job(video, audio)
        metrics, _ = self.run_job(job)
        frames = sorted(os.listdir(os.path.join(job.work_dir, "frames")))
        self.assertEqual(len(frames), 25)
        self.assertEqual(metrics["source_frames"], len(frames))
        self.assertTrue(all(name.endswith(".jpg") for name in frames))


class HostileMedia(EngineCase):
    """Inputs are refused as media errors from ffprobe's answer alone: nothing is decoded."""

    def setUp(self) -> None:
        super().setUp()
        self.video, self.audio = os.path.join(self.dir, "avatar.mp4"), os.path.join(self.dir, "voice.wav")
        make_avatar(self.video, "25", 0.4)
        make_voice(self.audio, 0.5)

    def refused(self, video: str, audio: str, expected: str) -> MediaError:
        with self.assertRaises(MediaError) as caught:
            self.run_job(self.job(video, audio))
        self.assertEqual(caught.exception.stage, "validation")
        self.assertIn(expected, caught.exception.message)
        self.assertEqual(self.models.detector.calls, 0, "nothing was decoded")
        self.assertEqual(self.models.vae.encoded, [])
        return caught.exception

    def test_an_hls_playlist_of_local_segments_is_refused_by_format(self) -> None:
        playlist = os.path.join(self.dir, "playlist.mp4")
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25:duration=2", "-f", "hls",
               "-hls_time", "1", os.path.join(self.dir, "p.m3u8"))
        shutil.copy(os.path.join(self.dir, "p.m3u8"), playlist)
        # Refused either way, before any segment is decoded: by format (ffprobe names it hls), or,
        # with builds whose hls demuxer refuses the file protocol's segments, as not decodable.
        with self.assertRaises(MediaError) as caught:
            self.run_job(self.job(playlist, self.audio))
        self.assertEqual(caught.exception.stage, "validation")
        self.assertRegex(caught.exception.message, r"format 'hls' is not accepted|not decodable")
        if "format" in caught.exception.message:
            self.assertEqual(caught.exception.details["format_name"], "hls")
        self.assertEqual(self.models.detector.calls, 0, "nothing was decoded")
        self.assertEqual(self.models.vae.encoded, [])

    def test_an_hls_playlist_naming_a_url_is_not_fetched(self) -> None:
        playlist = os.path.join(self.dir, "remote.m3u8")
        with open(playlist, "w") as handle:
            handle.write("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n")
        error = self.refused(playlist, self.audio, "not decodable")
        self.assertIn("not on whitelist", error.details["ffprobe_stderr"])

    def test_a_concat_list_disguised_as_mp4_is_refused(self) -> None:
        listing = os.path.join(self.dir, "list.mp4")
        with open(listing, "w") as handle:
            handle.write("ffconcat version 1.0\nfile 'avatar.mp4'\n")
        self.refused(listing, self.audio, "format 'concat' is not accepted")

    def test_an_image_sequence_pattern_is_refused(self) -> None:
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25:duration=0.2",
               os.path.join(self.dir, "img%03d.png"))
        # A file whose name is a pattern: ffmpeg's image2 demuxer would read img001.png, img002.png...
        pattern = os.path.join(self.dir, "img%03d.png")
        shutil.copy(os.path.join(self.dir, "img001.png"), pattern)
        self.refused(pattern, self.audio, "format 'image2' is not accepted")

    def test_a_picture_wider_than_the_limit_is_refused(self) -> None:
        wide = os.path.join(self.dir, "wide.mkv")
        ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=4100x16:rate=25:duration=0.2", "-c:v", "ffv1", wide)
        error = self.refused(wide, self.audio, "over the 4096 px limit")
        self.assertEqual(error.details["width"], 4100)

    def test_a_voice_longer_than_ten_minutes_is_refused(self) -> None:
        long_voice = os.path.join(self.dir, "long.wav")
        ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "601", long_voice)
        self.refused(self.video, long_voice, "over the 600 s limit")

    def test_the_limits_come_from_the_environment(self) -> None:
        self.engine.limits = MuseTalkEngine.from_env({"INFERENCE_MAX_SIDE_PX": "100",
                                                      "INFERENCE_MAX_DURATION_SEC": "10"}).limits
        self.refused(self.video, self.audio, "over the 100 px limit")


class Settings(unittest.TestCase):
    def test_the_device_setting_accepts_cpu_and_cuda_only(self) -> None:
        from engine import SetupError
        self.assertEqual(MuseTalkEngine.from_env({"INFERENCE_DEVICE": "cpu"}).device_name, "cpu")
        with self.assertRaises(SetupError) as caught:
            MuseTalkEngine.from_env({"INFERENCE_DEVICE": "tpu"})
        self.assertIn("INFERENCE_DEVICE", str(caught.exception))

    def test_fp16_is_off_on_cpu_whatever_the_setting(self) -> None:
        self.assertFalse(MuseTalkEngine.from_env({"INFERENCE_DEVICE": "cpu", "MUSETALK_FP16": "1"}).fp16)
        self.assertTrue(MuseTalkEngine.from_env({"INFERENCE_DEVICE": "cuda"}).fp16)

    def test_a_non_numeric_setting_names_the_variable(self) -> None:
        from engine import SetupError
        for name in ("MUSETALK_FPS", "MUSETALK_GPU_ID", "MUSETALK_EXTRA_MARGIN", "MUSETALK_BBOX_SHIFT",
                     "INFERENCE_MAX_SIDE_PX", "INFERENCE_MAX_DURATION_SEC"):
            with self.assertRaises(SetupError) as caught:
                MuseTalkEngine.from_env({name: "ten"})
            self.assertIn(name, str(caught.exception))
        with self.assertRaises(SetupError) as caught:
            MuseTalkEngine.from_env({"MUSETALK_FP16": "maybe"})
        self.assertIn("MUSETALK_FP16", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
