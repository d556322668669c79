"""MuseTalk v1.5 as a warm engine: every model loaded once in load(), each job only computes.

Follows MuseTalk's own inference (TMElyralab/MuseTalk scripts/inference.py with
musetalk/utils/{utils,preprocessing,audio_processor,blending}.py), with `--version v15
--use_float16`, bbox_shift 0, extra_margin 10, parsing mode "jaw", cheek widths 90 and audio
padding 2/2, which is how the original image invoked it. What differs, and why:
- models stay in GPU memory between jobs (the original spent ~70 of 81 s reloading them);
- frames without a detected face pass through unchanged instead of being dropped, so the output
  keeps the audio's length; no face in any frame is a media_error;
- landmarks, UNet batches and encoding check the cancel event and report progress as they go;
- frames are piped to ffmpeg (h264_nvenc when this GPU can open a session, else libx264) and
  every ffmpeg exit code is checked;
- CUDA out-of-memory becomes a retryable processing_error, and the CUDA cache is emptied after it.

It needs the MuseTalk image (torch 2.0.1+cu118, mmpose, weights in MUSETALK_DIR/models): nothing
here can run on a machine without a GPU, which is why CI runs the server with fake_engine.py.
"""

from __future__ import annotations

import gc
import glob
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from engine import (
    Engine, Job, MediaError, OutOfMemory, ProcessingError, ProgressCallback, SetupError,
    check_cancel, is_cuda_oom,
)
from media import ENCODER_ARGS, FFMPEG, choose_h264_encoder, mux_audio, probe, require_stream, run_command

Box = Tuple[int, int, int, int]


class MuseTalkEngine(Engine):
    name = "musetalk-v15"
    version = "1.5"
    lip_sync = True

    def __init__(self, root: str = "/app", gpu_id: int = 0, fp16: bool = True, encoder: str = "auto",
                 extra_margin: int = 10, parsing_mode: str = "jaw", cheek_width: int = 90) -> None:
        self.root = root
        self.gpu_id = gpu_id
        self.fp16 = fp16
        self.encoder_preference = encoder
        self.encoder = "libx264"
        self.extra_margin = extra_margin
        self.parsing_mode = parsing_mode
        self.cheek_width = cheek_width
        self._gpu: Optional[Dict[str, Any]] = None

    @classmethod
    def from_env(cls, env: Dict[str, str]) -> "MuseTalkEngine":
        return cls(
            root=env.get("MUSETALK_DIR") or "/app",
            gpu_id=int(env.get("MUSETALK_GPU_ID") or 0),
            fp16=(env.get("MUSETALK_FP16") or "true") not in ("0", "false"),
            encoder=env.get("MUSETALK_ENCODER") or "auto",
            extra_margin=int(env.get("MUSETALK_EXTRA_MARGIN") or 10),
            parsing_mode=env.get("MUSETALK_PARSING_MODE") or "jaw",
            cheek_width=int(env.get("MUSETALK_CHEEK_WIDTH") or 90),
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
        if not torch.cuda.is_available():
            raise SetupError("CUDA is not available: run the container with the GPU reserved (--gpus)")
        self.torch = torch
        self.device = torch.device(f"cuda:{self.gpu_id}")
        torch.cuda.set_device(self.device)

        from transformers import WhisperModel
        from musetalk.utils.audio_processor import AudioProcessor
        from musetalk.utils.blending import get_image
        from musetalk.utils.face_parsing import FaceParsing
        from musetalk.utils.utils import load_all_model

        vae, unet, pe = load_all_model(
            unet_model_path=os.path.join("models", "musetalkV15", "unet.pth"),
            vae_type="sd-vae",
            unet_config=os.path.join("models", "musetalkV15", "musetalk.json"),
            device=self.device,
        )
        if self.fp16:
            pe, vae.vae, unet.model = pe.half(), vae.vae.half(), unet.model.half()
        self.pe = pe.to(self.device)
        vae.vae = vae.vae.to(self.device)
        unet.model = unet.model.to(self.device)
        self.vae, self.unet = vae, unet
        self.dtype = unet.model.dtype
        self.timesteps = torch.tensor([0], device=self.device)

        whisper_dir = os.path.join("models", "whisper")
        self.audio = AudioProcessor(feature_extractor_path=whisper_dir)
        whisper = WhisperModel.from_pretrained(whisper_dir)
        self.whisper = whisper.to(device=self.device, dtype=self.dtype).eval()
        self.whisper.requires_grad_(False)

        self.face_parsing = FaceParsing(left_cheek_width=self.cheek_width, right_cheek_width=self.cheek_width)
        self.get_image = get_image

        # Importing preprocessing builds DWPose (mmpose) and the S3FD face detector at module
        # level; importing it here, once, is what keeps them warm.
        from mmpose.apis import inference_topdown
        from mmpose.structures import merge_data_samples
        import musetalk.utils.preprocessing as preprocessing
        self.pose_model = preprocessing.model
        self.face_detector = preprocessing.fa
        self.inference_topdown = inference_topdown
        self.merge_data_samples = merge_data_samples

        self._warm_up()
        self.encoder = choose_h264_encoder(self.encoder_preference)
        props = torch.cuda.get_device_properties(self.device)
        self._gpu = {"name": props.name, "memory_total_mib": round(props.total_memory / 2**20),
                     "capability": f"{props.major}.{props.minor}", "encoder": self.encoder}

    def _warm_up(self) -> None:
        """One tiny UNet step: an unsupported GPU fails here (SETUP_FAILED), not in a job."""
        torch = self.torch
        config = self.unet.model.config
        try:
            with torch.no_grad():
                latent = torch.zeros((1, config.in_channels, 32, 32), device=self.device, dtype=self.dtype)
                audio = self.pe(torch.zeros((1, 50, config.cross_attention_dim), device=self.device, dtype=self.dtype))
                self.unet.model(latent, self.timesteps, encoder_hidden_states=audio)
            torch.cuda.synchronize(self.device)
        except RuntimeError as exc:
            hint = " (this torch build has no kernels for this GPU)" if "no kernel image" in str(exc) else ""
            raise SetupError(f"UNet warm-up failed{hint}: {exc}") from exc

    def gpu_info(self) -> Optional[Dict[str, Any]]:
        if self._gpu is None:
            return None
        return {**self._gpu, "memory_allocated_mib": round(self.torch.cuda.memory_allocated(self.device) / 2**20)}

    def after_failure(self) -> None:
        gc.collect()
        if hasattr(self, "torch"):
            self.torch.cuda.empty_cache()

    # -- one job -------------------------------------------------------------------------------

    def run(self, job: Job, progress: ProgressCallback, cancel: threading.Event) -> Dict[str, Any]:
        torch = self.torch
        # The current CUDA device is per thread and each job runs in a fresh one; MuseTalk's face
        # parser uses bare .cuda(), so make it mean the configured GPU here too.
        torch.cuda.set_device(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        times: Dict[str, float] = {}
        try:
            with torch.no_grad():
                return self._run(job, progress, cancel, times)
        except Exception as exc:
            if is_cuda_oom(exc):
                raise OutOfMemory(str(exc), details={"batch_size": job.batch_size, "stage_times": times}) from exc
            raise

    def _run(self, job: Job, progress: ProgressCallback, cancel: threading.Event,
             times: Dict[str, float]) -> Dict[str, Any]:
        clock = time.monotonic()

        progress(0.01, "frames")
        frames, fps = self._read_frames(job, cancel)
        times["frames"] = _lap(clock)

        progress(0.08, "audio")
        chunks = self._audio_chunks(job, fps, cancel)
        times["audio"] = _lap(clock, times)

        boxes = self._face_boxes(frames, progress, cancel)
        times["landmarks"] = _lap(clock, times)

        progress(0.4, "latents")
        latents = self._latents(frames, boxes, cancel)
        times["latents"] = _lap(clock, times)

        # Ping-pong the source so any audio length is covered without a jump cut.
        frames_cycle, boxes_cycle, latents_cycle = frames + frames[::-1], boxes + boxes[::-1], latents + latents[::-1]
        silent_video = os.path.join(job.work_dir, "video.mp4")
        generation_started = time.monotonic()
        passthrough = self._generate(job, chunks, frames_cycle, boxes_cycle, latents_cycle, fps,
                                     silent_video, progress, cancel)
        generation_sec = time.monotonic() - generation_started
        times["generate"] = _lap(clock, times)

        progress(0.97, "muxing")
        mux_audio(silent_video, job.audio_path, job.output_path, cancel)
        times["mux"] = _lap(clock, times)
        return {
            "GENERATION_TIME_SEC": round(generation_sec, 3),
            "PEAK_VRAM_MIB": round(self.torch.cuda.max_memory_allocated(self.device) / 2**20, 2),
            "frames": len(chunks),
            "source_frames": len(frames),
            "fps": fps,
            "batch_size": job.batch_size,
            "encoder": self.encoder,
            "frames_without_face": passthrough,
            "stage_times": times,
        }

    def _read_frames(self, job: Job, cancel: threading.Event) -> Tuple[List[Any], float]:
        import cv2
        info = probe(job.video_path, "video")
        require_stream(info, "video", "video")
        fps = info.get("fps") or 25.0
        frames_dir = os.path.join(job.work_dir, "frames")
        os.makedirs(frames_dir, exist_ok=True)
        run_command([FFMPEG, "-v", "error", "-i", job.video_path, "-start_number", "0",
                     os.path.join(frames_dir, "%08d.png")],
                    cancel, stage="preprocessing", what="frame extraction", error_class=MediaError)
        paths = sorted(glob.glob(os.path.join(frames_dir, "*.png")))
        frames = [cv2.imread(path) for path in paths]
        if not frames or any(frame is None for frame in frames):
            raise MediaError("no decodable frames in the avatar video", stage="preprocessing")
        return frames, float(fps)

    def _audio_chunks(self, job: Job, fps: float, cancel: threading.Event) -> Any:
        info = probe(job.audio_path, "audio")
        require_stream(info, "audio", "audio")
        # MuseTalk reads 16 kHz mono PCM; converting first accepts any container ffmpeg decodes.
        wav = os.path.join(job.work_dir, "audio16k.wav")
        run_command([FFMPEG, "-y", "-v", "error", "-i", job.audio_path, "-vn", "-ac", "1", "-ar", "16000",
                     "-c:a", "pcm_s16le", wav],
                    cancel, stage="preprocessing", what="audio conversion", error_class=MediaError)
        features, length = self.audio.get_audio_feature(wav, weight_dtype=self.dtype)
        # The same frame count get_whisper_chunk computes; zero would end in an empty torch.cat.
        if int(length / 16000 * int(fps)) == 0:
            raise MediaError("audio is too short to make a single frame", stage="preprocessing")
        chunks = self.audio.get_whisper_chunk(
            features, self.device, self.dtype, self.whisper, length, fps=fps,
            audio_padding_length_left=2, audio_padding_length_right=2,
        )
        return chunks

    def _face_boxes(self, frames: List[Any], progress: ProgressCallback, cancel: threading.Event) -> List[Optional[Box]]:
        """musetalk.utils.preprocessing.get_landmark_and_bbox with bbox_shift 0, one frame at a time."""
        import numpy as np
        boxes: List[Optional[Box]] = []
        for index, frame in enumerate(frames):
            check_cancel(cancel)
            pose = self.merge_data_samples(self.inference_topdown(self.pose_model, frame))
            landmarks = pose.pred_instances.keypoints[0][23:91].astype(np.int32)
            detection = self.face_detector.get_detections_for_batch(np.asarray([frame]))[0]
            if detection is None:
                boxes.append(None)
            else:
                middle_y = landmarks[29][1]
                upper = max(0, middle_y - (np.max(landmarks[:, 1]) - middle_y))
                box = (int(np.min(landmarks[:, 0])), int(upper), int(np.max(landmarks[:, 0])), int(np.max(landmarks[:, 1])))
                x1, y1, x2, y2 = box
                # As upstream: a landmark box that makes no sense falls back to the detector's box.
                boxes.append(box if y2 > y1 and x2 > x1 and x1 >= 0 else tuple(int(v) for v in detection))
            if index % 8 == 0:
                progress(0.1 + 0.3 * (index + 1) / len(frames), "landmarks")
        if all(box is None for box in boxes):
            raise MediaError("no face detected in any frame of the avatar video", stage="preprocessing",
                             details={"frames": len(frames)})
        height = frames[0].shape[0]
        return [None if b is None else (b[0], b[1], b[2], min(b[3] + self.extra_margin, height)) for b in boxes]

    def _latents(self, frames: List[Any], boxes: List[Optional[Box]], cancel: threading.Event) -> List[Any]:
        import cv2
        latents: List[Any] = []
        for frame, box in zip(frames, boxes):
            check_cancel(cancel)
            if box is None:
                latents.append(None)
                continue
            x1, y1, x2, y2 = box
            crop = cv2.resize(frame[y1:y2, x1:x2], (256, 256), interpolation=cv2.INTER_LANCZOS4)
            latents.append(self.vae.get_latents_for_unet(crop))
        # A faceless frame's generated face is discarded at blending; it only needs a latent
        # of the right shape, so it borrows its nearest neighbour's.
        known = [i for i, latent in enumerate(latents) if latent is not None]
        return [latent if latent is not None else latents[min(known, key=lambda k: abs(k - i))]
                for i, latent in enumerate(latents)]

    def _generate(self, job: Job, chunks: Any, frames: List[Any], boxes: List[Optional[Box]], latents: List[Any],
                  fps: float, out_path: str, progress: ProgressCallback, cancel: threading.Event) -> int:
        """Batched UNet + VAE decode + blend, frames piped straight into the encoder."""
        import subprocess
        import cv2
        import numpy as np
        torch = self.torch
        height, width = frames[0].shape[:2]
        log_path = os.path.join(job.work_dir, "encoder.log")
        encoder = self.encoder
        with open(log_path, "wb") as encoder_log:
            proc = subprocess.Popen(
                [FFMPEG, "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                 "-r", f"{fps}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", *ENCODER_ARGS[encoder], out_path],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=encoder_log,
            )
            passthrough = 0
            try:
                total = len(chunks)
                batches = (total + job.batch_size - 1) // job.batch_size
                for batch_index, start in enumerate(range(0, total, job.batch_size)):
                    check_cancel(cancel)
                    stop = min(start + job.batch_size, total)
                    audio = self.pe(chunks[start:stop].to(self.device))
                    latent = torch.cat([latents[i % len(latents)] for i in range(start, stop)], dim=0).to(dtype=self.dtype)
                    predicted = self.unet.model(latent, self.timesteps, encoder_hidden_states=audio).sample
                    for offset, face in enumerate(self.vae.decode_latents(predicted)):
                        index = (start + offset) % len(frames)
                        frame, box = frames[index], boxes[index]
                        if box is None:
                            passthrough += 1
                            blended = frame
                        else:
                            x1, y1, x2, y2 = box
                            face = cv2.resize(face.astype(np.uint8), (x2 - x1, y2 - y1))
                            blended = self.get_image(frame.copy(), face, [x1, y1, x2, y2],
                                                     mode=self.parsing_mode, fp=self.face_parsing)
                        proc.stdin.write(np.ascontiguousarray(blended).tobytes())
                    progress(0.5 + 0.45 * (batch_index + 1) / batches, "inference")
                proc.stdin.close()
                code = proc.wait()
            except BrokenPipeError:
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if code != 0:
            with open(log_path, "rb") as handle:
                tail = handle.read()[-1000:].decode(errors="replace")
            if encoder == "h264_nvenc":
                # Consumer GPUs cap concurrent NVENC sessions; later jobs use libx264 instead.
                self.encoder = "libx264"
            raise ProcessingError(f"{encoder} encoding failed (ffmpeg exit {code})", stage="postprocessing",
                                  retryable=True, details={"stderr": tail})
        return passthrough


def _lap(clock: float, times: Optional[Dict[str, float]] = None) -> float:
    return round(time.monotonic() - clock - sum((times or {}).values()), 3)
