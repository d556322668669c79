"""MuseTalk v1.5 as a warm engine: every model loaded once in load(), each job only computes.

Follows MuseTalk's own inference (TMElyralab/MuseTalk scripts/inference.py and
realtime_inference.py with musetalk/utils/{utils,preprocessing,audio_processor,blending}.py), with
`--version v15`, bbox_shift 0, extra_margin 10, parsing mode "jaw", cheek widths 90 and audio
padding 2/2, which is how the original image invoked it. What differs, and why:
- models stay in memory between jobs (the original spent ~70 of 81 s reloading them);
- one integer frame rate (MUSETALK_FPS, 25 by default, what MuseTalk recommends) for everything:
  the avatar is decoded at that rate, the audio is cut into that many chunks per second, and the
  video is encoded at it. MuseTalk's audio chunking truncates the rate to an int, so a 29.97 fps
  avatar kept at its own rate ends up ~3% shorter than the voice, which the mux then cuts;
- frames are streamed: decoded once, reduced to what generation needs at crop size (box, latent,
  blending mask) and written to the job's directory as JPEG, never all held decoded in RAM;
- the face-parsing mask depends only on the source frame and its box, so it is computed once per
  source frame (as realtime_inference.py does), not once per output frame;
- frames without a detected face pass through unchanged instead of being dropped, so the output
  keeps the audio's length, and the metrics count them; no face in any frame is a media_error;
- landmarks, UNet batches and encoding check the cancel event and report progress as they go;
- frames are piped to ffmpeg (h264_nvenc when this GPU can open a session, else libx264) and
  every ffmpeg exit code is checked;
- INFERENCE_DEVICE=cpu runs the same code without CUDA (fp32, slowly): that is how CI tests it,
  with small stand-in models of the real tensor shapes injected by attach_models();
- a prepared avatar is kept across jobs (avatar_cache.py, keyed by the video's bytes and the
  preparation settings), so a reused avatar costs only generation;
- the mask is made by get_image_prepare_material (realtime_inference.py's blur of 0.1 × the crop,
  where inference.py's get_image blurs 0.05 ×), so it can be computed once;
- CUDA out-of-memory becomes a retryable processing_error, and the CUDA cache is emptied after it.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from avatar_cache import AvatarCache, cache_key, file_sha256
from engine import (
    Engine, Job, MediaError, OutOfMemory, ProcessingError, ProgressCallback, SetupError,
    avatar_not_prepared, check_cancel, disk_full_error, env_flag, env_number, is_cuda_oom, is_disk_full,
)
from media import (
    ENCODER_ARGS, FFMPEG, INPUT_GUARD, MediaLimits, choose_h264_encoder, demuxer, limits_from_env, mux_audio, probe,
    require_stream, run_command,
)

Box = Tuple[int, int, int, int]
# (68 face landmarks as (x, y), the face detector's box or None): what DWPose + S3FD give per frame.
Detection = Tuple[Any, Optional[Sequence[float]]]

CROP_SIZE = 256
AUDIO_SAMPLE_RATE = 16000
JPEG_QUALITY = 95


def face_box(landmarks: Any, detection: Optional[Sequence[float]], bbox_shift: int, extra_margin: int,
             height: int) -> Optional[Box]:
    """musetalk.utils.preprocessing.get_landmark_and_bbox for one frame, then inference.py's margin.

    The box spans the 68 face landmarks horizontally; vertically from the mouth-to-nose midpoint
    (landmark 29, moved down by bbox_shift) mirrored upwards, down to the chin. A box that makes
    no sense falls back to the detector's. extra_margin extends the bottom (v1.5's chin room).
    """
    import numpy as np
    if detection is None:
        return None
    marks = np.array(landmarks, dtype=np.int32)  # a copy: upstream shifts landmark 29 in place
    if bbox_shift:
        marks[29][1] += bbox_shift
    middle_y = int(marks[29][1])
    lowest = int(np.max(marks[:, 1]))
    upper = max(0, middle_y - (lowest - middle_y))
    x1, y1, x2, y2 = int(np.min(marks[:, 0])), int(upper), int(np.max(marks[:, 0])), lowest
    if y2 - y1 <= 0 or x2 - x1 <= 0 or x1 < 0:
        x1, y1, x2, y2 = (int(v) for v in detection)
    return x1, y1, x2, min(y2 + extra_margin, height)


def cycle_index(output_index: int, source_frames: int) -> int:
    """The source frame for an output frame: forward, then backward, and again (no jump cut)."""
    k = output_index % (2 * source_frames)
    return k if k < source_frames else 2 * source_frames - 1 - k


@dataclass
class Avatar:
    """A prepared avatar: everything generation needs, at crop size, plus the frames on disk."""
    frames_dir: str
    width: int
    height: int
    boxes: List[Optional[Box]] = field(default_factory=list)
    latents: List[Any] = field(default_factory=list)
    # Per source frame with a face: (blending mask, crop box), from get_image_prepare_material.
    materials: List[Optional[Tuple[Any, Any]]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.boxes)

    def frame_path(self, index: int) -> str:
        return os.path.join(self.frames_dir, f"{index:08d}.jpg")


class MuseTalkEngine(Engine):
    name = "musetalk-v15"
    version = "1.5"
    lip_sync = True

    def __init__(self, root: str = "/app", device: str = "cuda", gpu_id: int = 0, fp16: bool = True,
                 encoder: str = "auto", fps: int = 25, bbox_shift: int = 0, extra_margin: int = 10,
                 parsing_mode: str = "jaw", cheek_width: int = 90, limits: MediaLimits = MediaLimits(),
                 cache_dir: Optional[str] = None, cache_max_bytes: int = 20 * 2**30) -> None:
        if device not in ("cuda", "cpu"):
            raise SetupError(f"INFERENCE_DEVICE must be cuda or cpu, got {device!r}")
        self.root = root
        self.device_name = device
        self.gpu_id = gpu_id
        # Half precision is a GPU optimisation; CPU kernels for fp16 are missing or slow.
        self.fp16 = fp16 and device == "cuda"
        self.encoder_preference = encoder
        self.encoder = "libx264"
        self.fps = fps
        self.bbox_shift = bbox_shift
        self.extra_margin = extra_margin
        self.parsing_mode = parsing_mode
        self.cheek_width = cheek_width
        self.limits = limits
        self.cache_dir = cache_dir
        self.cache_max_bytes = cache_max_bytes
        self.cache: Optional[AvatarCache] = None
        # Part of the cache key: prepared latents belong to the weights that made them.
        self.weights_id = "none"
        self._gpu: Optional[Dict[str, Any]] = None

    @classmethod
    def from_env(cls, env: Dict[str, str]) -> "MuseTalkEngine":
        return cls(
            root=env.get("MUSETALK_DIR") or "/app",
            device=(env.get("INFERENCE_DEVICE") or "cuda").strip().lower(),
            gpu_id=env_number(env, "MUSETALK_GPU_ID", 0, int, 0),
            fp16=env_flag(env, "MUSETALK_FP16", True),
            encoder=env.get("MUSETALK_ENCODER") or "auto",
            fps=env_number(env, "MUSETALK_FPS", 25, int, 1, 60),
            bbox_shift=env_number(env, "MUSETALK_BBOX_SHIFT", 0, int, -100, 100),
            extra_margin=env_number(env, "MUSETALK_EXTRA_MARGIN", 10, int, 0, 200),
            parsing_mode=env.get("MUSETALK_PARSING_MODE") or "jaw",
            cheek_width=env_number(env, "MUSETALK_CHEEK_WIDTH", 90, int, 0, 500),
            limits=limits_from_env(env),
            cache_dir=env.get("INFERENCE_AVATAR_CACHE_DIR") or None,
            cache_max_bytes=env_number(env, "INFERENCE_AVATAR_CACHE_MAX_BYTES", 20 * 2**30, int, 0),
        )

    # -- load once -----------------------------------------------------------------------------

    def load(self) -> None:
        if not os.path.isdir(os.path.join(self.root, "musetalk")):
            raise SetupError(f"MuseTalk source not found in MUSETALK_DIR={self.root}")
        # MuseTalk resolves its weights and the DWPose config relative to the working directory.
        os.chdir(self.root)
        if self.root not in sys.path:
            sys.path.insert(0, self.root)
        import torch
        if self.device_name == "cuda":
            if not torch.cuda.is_available():
                raise SetupError("INFERENCE_DEVICE=cuda but CUDA is not available: run the container with "
                                 "the GPU reserved (--gpus), or set INFERENCE_DEVICE=cpu")
            device = torch.device(f"cuda:{self.gpu_id}")
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")

        from transformers import WhisperModel
        from musetalk.utils.audio_processor import AudioProcessor
        from musetalk.utils.blending import get_image_blending, get_image_prepare_material
        from musetalk.utils.face_parsing import FaceParsing
        from musetalk.utils.utils import load_all_model

        vae, unet, pe = load_all_model(
            unet_model_path=os.path.join("models", "musetalkV15", "unet.pth"),
            vae_type="sd-vae",
            unet_config=os.path.join("models", "musetalkV15", "musetalk.json"),
            device=device,
        )
        if self.fp16:
            pe, vae.vae, unet.model = pe.half(), vae.vae.half(), unet.model.half()
        vae.vae = vae.vae.to(device)
        unet.model = unet.model.to(device)
        dtype = unet.model.dtype

        whisper_dir = os.path.join("models", "whisper")
        audio = AudioProcessor(feature_extractor_path=whisper_dir)
        whisper = WhisperModel.from_pretrained(whisper_dir).to(device=device, dtype=dtype).eval()
        whisper.requires_grad_(False)

        face_parsing = FaceParsing(left_cheek_width=self.cheek_width, right_cheek_width=self.cheek_width)

        # Importing preprocessing builds DWPose (mmpose) and the S3FD face detector at module
        # level; importing it here, once, is what keeps them warm.
        import numpy as np
        from mmpose.apis import inference_topdown
        from mmpose.structures import merge_data_samples
        import musetalk.utils.preprocessing as preprocessing

        def detect(frame: Any) -> Detection:
            pose = merge_data_samples(inference_topdown(preprocessing.model, frame))
            landmarks = pose.pred_instances.keypoints[0][23:91].astype(np.int32)
            return landmarks, preprocessing.fa.get_detections_for_batch(np.asarray([frame]))[0]

        mode = self.parsing_mode
        self.attach_models(
            torch=torch, device=device, vae=vae, unet=unet, pe=pe.to(device), audio=audio, whisper=whisper,
            detect=detect,
            prepare_material=lambda frame, box: get_image_prepare_material(frame, list(box), fp=face_parsing, mode=mode),
            blend=lambda frame, face, box, mask, crop_box: get_image_blending(frame, face, list(box), mask, crop_box),
        )
        self._warm_up()
        sums = os.path.join(self.root, "models", "SHA256SUMS")
        if os.path.isfile(sums):
            self.weights_id = file_sha256(sums)[:16]
        self.open_cache()
        self.encoder = choose_h264_encoder(self.encoder_preference)
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            self._gpu = {"name": props.name, "memory_total_mib": round(props.total_memory / 2**20),
                         "capability": f"{props.major}.{props.minor}", "encoder": self.encoder}

    def attach_models(self, torch: Any, device: Any, vae: Any, unet: Any, pe: Any, audio: Any, whisper: Any,
                      detect: Callable[[Any], Detection], prepare_material: Callable[[Any, Box], Tuple[Any, Any]],
                      blend: Callable[[Any, Any, Box, Any, Any], Any]) -> None:
        """The models a job uses. load() passes MuseTalk's; the CPU tests pass small stand-ins of
        the same shapes, so everything between the models is the code that runs on a GPU box."""
        self.torch = torch
        self.device = device
        self.vae, self.unet, self.pe = vae, unet, pe
        self.dtype = unet.model.dtype
        self.timesteps = torch.tensor([0], device=device)
        self.audio, self.whisper = audio, whisper
        self.detect, self.prepare_material, self.blend = detect, prepare_material, blend

    def open_cache(self) -> None:
        if self.cache_dir and self.cache_max_bytes > 0:
            self.cache = AvatarCache(self.cache_dir, self.cache_max_bytes, log=self.log)

    def cache_info(self) -> Optional[Dict[str, Any]]:
        return self.cache.stats() if self.cache is not None else None

    def has_prepared(self, video_sha256: str) -> bool:
        return self.cache is not None and self.cache.has(cache_key(video_sha256, self.preparation_settings()))

    def preparation_settings(self) -> Dict[str, Any]:
        """Everything that changes a prepared avatar (the cache key, with the video's sha256)."""
        return {"engine": self.name, "version": self.version, "weights": self.weights_id, "fps": self.fps,
                "bbox_shift": self.bbox_shift, "extra_margin": self.extra_margin,
                "parsing_mode": self.parsing_mode, "cheek_width": self.cheek_width, "crop": CROP_SIZE,
                "jpeg_quality": JPEG_QUALITY, "dtype": str(self.dtype)}

    def _warm_up(self) -> None:
        """One tiny UNet step: an unsupported GPU fails here (SETUP_FAILED), not in a job."""
        torch = self.torch
        config = self.unet.model.config
        try:
            with torch.no_grad():
                latent = torch.zeros((1, config.in_channels, 32, 32), device=self.device, dtype=self.dtype)
                audio = self.pe(torch.zeros((1, 50, config.cross_attention_dim), device=self.device, dtype=self.dtype))
                self.unet.model(latent, self.timesteps, encoder_hidden_states=audio)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except RuntimeError as exc:
            hint = " (this torch build has no kernels for this GPU)" if "no kernel image" in str(exc) else ""
            raise SetupError(f"UNet warm-up failed{hint}: {exc}") from exc

    def gpu_info(self) -> Optional[Dict[str, Any]]:
        if self._gpu is None:
            return None
        return {**self._gpu, "memory_allocated_mib": round(self.torch.cuda.memory_allocated(self.device) / 2**20)}

    def _cuda(self) -> bool:
        return getattr(self, "device", None) is not None and self.device.type == "cuda"

    def after_failure(self) -> None:
        gc.collect()
        if self._cuda():
            self.torch.cuda.empty_cache()

    # -- one job -------------------------------------------------------------------------------

    def run(self, job: Job, progress: ProgressCallback, cancel: threading.Event) -> Dict[str, Any]:
        torch = self.torch
        if self._cuda():
            # The current CUDA device is per thread and each job runs in a fresh one; MuseTalk's
            # face parser uses bare .cuda(), so make it mean the configured GPU here too.
            torch.cuda.set_device(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        times: Dict[str, float] = {}
        try:
            with torch.no_grad():
                return self._run(job, progress, cancel, times)
        except Exception as exc:
            if is_cuda_oom(exc):
                raise OutOfMemory(str(exc), details={"batch_size": job.batch_size, "stage_times": times}) from exc
            if is_disk_full(exc) and not isinstance(exc, ProcessingError):
                raise disk_full_error(exc, stage="preprocessing" if "generate" not in times else "postprocessing") from exc
            raise

    def _run(self, job: Job, progress: ProgressCallback, cancel: threading.Event,
             times: Dict[str, float]) -> Dict[str, Any]:
        clock = time.monotonic()
        progress(0.01, "validation")
        # No video_path: the worker was told this avatar is prepared here and sent no video.
        video_info: Dict[str, Any] = {}
        if job.video_path is not None:
            video_info = probe(job.video_path, "video", self.limits)
            require_stream(video_info, "video", "video")
        audio_info = probe(job.audio_path, "audio", self.limits)
        require_stream(audio_info, "audio", "audio")
        times["validation"] = _lap(clock)

        progress(0.02, "audio")
        chunks = self._audio_chunks(job, audio_info, cancel)
        times["audio"] = _lap(clock, times)

        def prepare(directory: str) -> Avatar:
            if job.video_path is None:
                raise avatar_not_prepared(job.video_sha256)  # evicted since the worker asked
            return self.prepare(job.video_path, video_info, os.path.join(directory, "frames"), progress, cancel)

        if job.video_path is None and self.cache is None:
            raise avatar_not_prepared(job.video_sha256)
        if self.cache is not None:
            # The service checked a named hash against the file; an unnamed one is computed here.
            video_sha256 = job.video_sha256 or file_sha256(str(job.video_path))
            key = cache_key(video_sha256, self.preparation_settings())
            avatar, lease, hit = self.cache.get_or_prepare(key, prepare, self._save_avatar, self._load_avatar)
            cache_outcome = "hit" if hit else "miss"
        else:
            avatar, lease, cache_outcome = prepare(job.work_dir), None, "off"
        times["prepare"] = _lap(clock, times)

        silent_video = os.path.join(job.work_dir, "video.mp4")
        generation_started = time.monotonic()
        try:
            passthrough = self._generate(job, chunks, avatar, silent_video, progress, cancel)
        finally:
            if lease is not None:
                lease.release()
        generation_sec = time.monotonic() - generation_started
        times["generate"] = _lap(clock, times)

        progress(0.97, "muxing")
        mux_audio(silent_video, job.audio_path, job.output_path, cancel)
        times["mux"] = _lap(clock, times)
        return {
            "GENERATION_TIME_SEC": round(generation_sec, 3),
            "PEAK_VRAM_MIB": round(self.torch.cuda.max_memory_allocated(self.device) / 2**20, 2) if self._cuda() else None,
            "device": self.device.type,
            "frames": len(chunks),
            "fps": self.fps,
            "source_fps": video_info.get("fps"),
            "source_frames": avatar.count,
            "source_frames_without_face": sum(1 for box in avatar.boxes if box is None),
            "frames_without_face": passthrough,
            "batch_size": job.batch_size,
            "encoder": self.encoder,
            "avatar_cache": cache_outcome,
            "prepare_sec": times["prepare"],
            "wall_sec": round(time.monotonic() - clock, 3),
            "stage_times": times,
        }

    def _audio_chunks(self, job: Job, info: Dict[str, Any], cancel: threading.Event) -> Any:
        # MuseTalk reads 16 kHz mono PCM; converting first accepts any container ffmpeg decodes.
        wav = os.path.join(job.work_dir, "audio16k.wav")
        run_command([FFMPEG, "-y", "-v", "error", *INPUT_GUARD, *demuxer(info), "-i", job.audio_path, "-vn", "-ac", "1",
                     "-ar", str(AUDIO_SAMPLE_RATE), "-c:a", "pcm_s16le", wav],
                    cancel, stage="preprocessing", what="audio conversion", error_class=MediaError)
        features, length = self.audio.get_audio_feature(wav, weight_dtype=self.dtype)
        # The frame count get_whisper_chunk computes; zero would end in an empty torch.cat.
        frames = int(length / AUDIO_SAMPLE_RATE * self.fps)
        if frames == 0:
            raise MediaError("audio is too short to make a single frame", stage="preprocessing")
        chunks = self.audio.get_whisper_chunk(
            features, self.device, self.dtype, self.whisper, length, fps=self.fps,
            audio_padding_length_left=2, audio_padding_length_right=2,
        )
        if len(chunks) != frames:
            raise ProcessingError(f"audio gave {len(chunks)} chunks for {frames} frames", stage="preprocessing")
        return chunks

    # -- preparation: per source frame, once -----------------------------------------------------

    def prepare(self, video_path: str, info: Dict[str, Any], frames_dir: str, progress: ProgressCallback,
                cancel: threading.Event) -> Avatar:
        """Decode the avatar at self.fps and keep, per frame, its box, latent and blending mask;
        the frame itself goes to frames_dir (JPEG) for the output pass."""
        import cv2
        width, height = int(info["width"]), int(info["height"])
        os.makedirs(frames_dir, exist_ok=True)
        avatar = Avatar(frames_dir=frames_dir, width=width, height=height)
        duration = float(info.get("duration") or 0.0)
        expected = max(1, int(round(duration * self.fps)))
        decoded = self._decode(video_path, demuxer(info), width, height, os.path.dirname(frames_dir), cancel)
        for index, frame in enumerate(decoded):
            check_cancel(cancel)
            ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise ProcessingError("could not encode a source frame as JPEG", stage="preprocessing")
            with open(avatar.frame_path(index), "wb") as handle:
                handle.write(encoded.tobytes())
            landmarks, detection = self.detect(frame)
            box = face_box(landmarks, detection, self.bbox_shift, self.extra_margin, height)
            if box is not None and (box[2] <= box[0] or box[3] <= box[1] or box[0] >= width or box[1] >= height):
                box = None
            if box is None:
                avatar.boxes.append(None)
                avatar.latents.append(None)
                avatar.materials.append(None)
            else:
                x1, y1, x2, y2 = box
                crop = cv2.resize(frame[max(0, y1):y2, max(0, x1):x2], (CROP_SIZE, CROP_SIZE),
                                  interpolation=cv2.INTER_LANCZOS4)
                avatar.boxes.append(box)
                avatar.latents.append(self.vae.get_latents_for_unet(crop))
                avatar.materials.append(self.prepare_material(frame, box))
            if index % 8 == 0:
                progress(0.05 + 0.35 * min(1.0, (index + 1) / expected), "preparing")
        if avatar.count == 0:
            raise MediaError("no decodable frames in the avatar video", stage="preprocessing")
        known = [i for i, box in enumerate(avatar.boxes) if box is not None]
        if not known:
            raise MediaError("no face detected in any frame of the avatar video", stage="preprocessing",
                             details={"frames": avatar.count})
        # A faceless frame's generated face is discarded at blending; it only needs a latent of
        # the right shape, so it borrows its nearest neighbour's.
        avatar.latents = [latent if latent is not None else avatar.latents[min(known, key=lambda k: abs(k - i))]
                          for i, latent in enumerate(avatar.latents)]
        return avatar

    def _save_avatar(self, avatar: Avatar, path: str) -> None:
        torch = self.torch
        torch.save({
            "width": avatar.width, "height": avatar.height, "boxes": avatar.boxes,
            "latents": torch.cat(avatar.latents, dim=0).cpu(),
            "materials": avatar.materials,
        }, path)

    def _load_avatar(self, directory: str) -> Avatar:
        data = self.torch.load(os.path.join(directory, "avatar.pt"), map_location="cpu")
        latents = data["latents"].to(device=self.device, dtype=self.dtype)
        avatar = Avatar(frames_dir=os.path.join(directory, "frames"), width=int(data["width"]),
                        height=int(data["height"]), boxes=[None if b is None else tuple(b) for b in data["boxes"]],
                        latents=list(latents.split(1, dim=0)), materials=list(data["materials"]))
        if not (avatar.count == len(avatar.latents) == len(avatar.materials)) or avatar.count == 0:
            raise ValueError("prepared avatar's parts disagree on the frame count")
        return avatar

    def _decode(self, video_path: str, input_format: List[str], width: int, height: int, work_dir: str,
                cancel: threading.Event) -> Iterator[Any]:
        """BGR frames at self.fps, one at a time, from an ffmpeg pipe (ffmpeg drops or repeats
        frames to reach the rate, so 29.97 and 23.976 fps avatars become self.fps exactly)."""
        import numpy as np
        frame_bytes = width * height * 3
        log_path = os.path.join(work_dir, "decoder.log")
        with open(log_path, "wb") as decoder_log:
            proc = subprocess.Popen(
                [FFMPEG, "-v", "error", "-nostdin", *INPUT_GUARD, *input_format, "-i", video_path, "-map", "0:v:0", "-an",
                 "-vf", f"fps={self.fps}", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=decoder_log,
            )
            try:
                while True:
                    check_cancel(cancel)
                    data = proc.stdout.read(frame_bytes)
                    if len(data) < frame_bytes:
                        break
                    # A writable array: DWPose's and the face detector's pipelines may work in place.
                    yield np.frombuffer(bytearray(data), dtype=np.uint8).reshape(height, width, 3)
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
        if code != 0:
            with open(log_path, "rb") as handle:
                tail = handle.read()[-1000:].decode(errors="replace")
            raise MediaError(f"avatar video could not be decoded (ffmpeg exit {code})", details={"stderr": tail})

    # -- generation ------------------------------------------------------------------------------

    def _generate(self, job: Job, chunks: Any, avatar: Avatar, out_path: str, progress: ProgressCallback,
                  cancel: threading.Event) -> int:
        """Batched UNet + VAE decode + blend, frames piped straight into the encoder at self.fps."""
        import cv2
        import numpy as np
        torch = self.torch
        log_path = os.path.join(job.work_dir, "encoder.log")
        encoder = self.encoder
        with open(log_path, "wb") as encoder_log:
            proc = subprocess.Popen(
                [FFMPEG, "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
                 "-s", f"{avatar.width}x{avatar.height}", "-r", str(self.fps), "-i", "-",
                 "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", *ENCODER_ARGS[encoder], "-r", str(self.fps), out_path],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=encoder_log,
            )
            passthrough = 0
            try:
                total = len(chunks)
                batches = (total + job.batch_size - 1) // job.batch_size
                for batch_index, start in enumerate(range(0, total, job.batch_size)):
                    check_cancel(cancel)
                    stop = min(start + job.batch_size, total)
                    sources = [cycle_index(i, avatar.count) for i in range(start, stop)]
                    audio = self.pe(chunks[start:stop].to(self.device))
                    latent = torch.cat([avatar.latents[s] for s in sources], dim=0).to(dtype=self.dtype)
                    predicted = self.unet.model(latent, self.timesteps, encoder_hidden_states=audio).sample
                    for source, face in zip(sources, self.vae.decode_latents(predicted)):
                        frame = cv2.imread(avatar.frame_path(source))
                        if frame is None:
                            raise ProcessingError(f"prepared frame {source} is missing or unreadable",
                                                  stage="inference", retryable=True)
                        box, material = avatar.boxes[source], avatar.materials[source]
                        if box is None or material is None:
                            passthrough += 1
                            blended = frame
                        else:
                            x1, y1, x2, y2 = box
                            face = cv2.resize(face.astype(np.uint8), (x2 - x1, y2 - y1))
                            mask, crop_box = material
                            blended = self.blend(frame, face, box, mask, crop_box)
                        proc.stdin.write(np.ascontiguousarray(blended).tobytes())
                    progress(0.4 + 0.55 * (batch_index + 1) / batches, "inference")
                proc.stdin.close()
                code = proc.wait()
            except BrokenPipeError:
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if not proc.stdin.closed:
                    try:
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
        if code != 0:
            with open(log_path, "rb") as handle:
                tail = handle.read()[-1000:].decode(errors="replace")
            if is_disk_full(RuntimeError(tail)):
                raise disk_full_error(RuntimeError(f"{encoder} encoding: {tail[-300:]}"), stage="postprocessing")
            if encoder == "h264_nvenc":
                # Consumer GPUs cap concurrent NVENC sessions; later jobs use libx264 instead.
                self.encoder = "libx264"
            raise ProcessingError(f"{encoder} encoding failed (ffmpeg exit {code})", stage="postprocessing",
                                  retryable=True, details={"stderr": tail})
        return passthrough


class StandInMuseTalkEngine(MuseTalkEngine):
    """This engine's code on CPU with standins.py's small models instead of MuseTalk's
    (INFERENCE_ENGINE=standin): what the worker's end-to-end tests and the CPU benchmark run.
    The face box is fixed (STANDIN_FACE_BOX=x1,y1,x2,y2); frames that are almost black have no face."""

    name = "musetalk-v15-standin"
    lip_sync = False

    @classmethod
    def from_env(cls, env: Dict[str, str]) -> "MuseTalkEngine":
        engine = super().from_env({**env, "INFERENCE_DEVICE": "cpu", "MUSETALK_ENCODER": "libx264"})
        raw = env.get("STANDIN_FACE_BOX") or "60,40,132,120"
        try:
            box = tuple(int(v) for v in raw.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise SetupError(f"STANDIN_FACE_BOX must be x1,y1,x2,y2, got {raw!r}")
        engine.standin_box = box  # type: ignore[attr-defined]
        return engine

    def load(self) -> None:
        try:
            import torch
            from standins import attach_standins
        except ImportError as exc:
            raise SetupError(f"the stand-in engine needs torch and OpenCV (python3-torch, python3-opencv): {exc}") from exc
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        self.standins = attach_standins(self, getattr(self, "standin_box", (60, 40, 132, 120)))
        self._warm_up()
        self.open_cache()


def _lap(clock: float, times: Optional[Dict[str, float]] = None) -> float:
    return round(time.monotonic() - clock - sum((times or {}).values()), 3)
