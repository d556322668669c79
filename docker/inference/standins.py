"""Small stand-ins for MuseTalk's models, with the real tensor shapes, for CPU tests and benchmarks.

MuseTalk's weights, diffusers, transformers and mmpose are not installable where CI runs (Debian
packages only), but torch and OpenCV are. These replace only the models; everything between them
(decoding, boxes, crops, latents, the frame cycle, batching, blending, encoding, mux) is the real
engine's code. Shapes are the ones MuseTalk v1.5 uses:
  - VAE: a 256x256 BGR crop -> latents (1, 8, 32, 32) (masked lower half + reference, 4 + 4
    channels); decode (B, 4, 32, 32) -> (B, 256, 256, 3) uint8 BGR;
  - UNet: input 8 channels at 32x32, cross-attention over 50 audio tokens of 384, output 4 channels;
  - audio: 50 tokens of 384 per video frame (whisper-tiny's 5 hidden states x 10 features), cut
    exactly as MuseTalk's AudioProcessor.get_whisper_chunk does;
  - detector: fixed 68 landmarks (a fixed face box); a frame that is almost black has no face.
Every model records what it was called with, so tests assert on the calls, not on timing.
"""

from __future__ import annotations

import math
import wave
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

AUDIO_TOKENS = 50
AUDIO_DIM = 384


class _Config:
    in_channels = 8
    cross_attention_dim = AUDIO_DIM


class _Output:
    def __init__(self, sample: torch.Tensor) -> None:
        self.sample = sample


class StandInUNetModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = _Config()
        self.conv = nn.Conv2d(8, 4, kernel_size=3, padding=1)
        self.audio = nn.Linear(AUDIO_DIM, 4)
        self.batches: List[int] = []
        self.inputs: List[torch.Tensor] = []

    @property
    def dtype(self) -> torch.dtype:
        return self.conv.weight.dtype

    def forward(self, latent: torch.Tensor, timesteps: torch.Tensor, encoder_hidden_states: torch.Tensor) -> _Output:
        assert latent.shape[1:] == (8, 32, 32), latent.shape
        assert encoder_hidden_states.shape[1:] == (AUDIO_TOKENS, AUDIO_DIM), encoder_hidden_states.shape
        assert latent.shape[0] == encoder_hidden_states.shape[0]
        self.batches.append(latent.shape[0])
        self.inputs.append(latent.detach().clone())
        bias = self.audio(encoder_hidden_states.mean(dim=1))[:, :, None, None]
        return _Output(self.conv(latent) + bias)


class StandInUNet:
    def __init__(self) -> None:
        self.model = StandInUNetModel().eval()


class StandInPositionalEncoding(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (AUDIO_TOKENS, AUDIO_DIM), x.shape
        position = torch.arange(x.shape[1], dtype=x.dtype)[None, :, None]
        return x + torch.sin(position / 10.0)


class StandInVAE:
    """get_latents_for_unet / decode_latents as musetalk.models.vae.VAE has them."""

    def __init__(self) -> None:
        self.vae = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(3, 4, kernel_size=1)).eval()
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=8), nn.Conv2d(4, 3, kernel_size=1)).eval()
        self.encoded: List[torch.Tensor] = []

    def _encode(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1).float()[None] / 127.5 - 1
        return self.vae(x)

    def get_latents_for_unet(self, img: np.ndarray) -> torch.Tensor:
        assert img.shape == (256, 256, 3), img.shape
        masked = img.copy()
        masked[128:] = 0
        latents = torch.cat([self._encode(masked), self._encode(img)], dim=1)
        self.encoded.append(latents)
        return latents

    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        assert latents.shape[1:] == (4, 32, 32), latents.shape
        image = (self.decoder(latents.float()) / 2 + 0.5).clamp(0, 1)
        image = (image.permute(0, 2, 3, 1).numpy() * 255).round().astype("uint8")
        return image[..., ::-1]


class StandInWhisperEncoder(nn.Module):
    """whisper-tiny's encoder: 50 feature frames per second, 5 hidden states of 384."""

    def forward(self, features: torch.Tensor, output_hidden_states: bool = True) -> Any:
        frames = features.shape[-1]
        base = features.mean(dim=1, keepdim=True).transpose(1, 2).expand(-1, frames, AUDIO_DIM)

        class Out:
            hidden_states = tuple(base * (k + 1) for k in range(5))
        return Out()


class StandInWhisper:
    def __init__(self) -> None:
        self.encoder = StandInWhisperEncoder()


class StandInAudioProcessor:
    """musetalk.utils.audio_processor.AudioProcessor with a cheap feature extractor; the chunking
    (frame count, padding, 10 features x 5 layers per frame) is MuseTalk's, line for line."""

    def get_audio_feature(self, wav_path: str, weight_dtype: Optional[torch.dtype] = None) -> Tuple[List[torch.Tensor], int]:
        with wave.open(wav_path, "rb") as wav:
            assert wav.getframerate() == 16000 and wav.getnchannels() == 1
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float32) / 32768
        features = []
        segment = 30 * 16000
        for start in range(0, len(samples), segment):
            # Whisper's input: 80 mel bins x 3000 frames per (padded) 30 s segment.
            chunk = np.zeros(segment, dtype=np.float32)
            part = samples[start:start + segment]
            chunk[:len(part)] = part
            mel = torch.from_numpy(np.abs(chunk).reshape(3000, -1).mean(axis=1)).expand(80, 3000)[None]
            features.append(mel.to(dtype=weight_dtype) if weight_dtype is not None else mel)
        return features, len(samples)

    def get_whisper_chunk(self, whisper_input_features: Sequence[torch.Tensor], device: Any, weight_dtype: Any,
                          whisper: Any, librosa_length: int, fps: int = 25, audio_padding_length_left: int = 2,
                          audio_padding_length_right: int = 2) -> torch.Tensor:
        audio_feature_length_per_frame = 2 * (audio_padding_length_left + audio_padding_length_right + 1)
        whisper_feature = []
        for input_feature in whisper_input_features:
            # 3000 mel frames -> 1500 encoder frames, as whisper's strided convolution does.
            hidden = whisper.encoder(input_feature.to(device).to(weight_dtype)[..., ::2], output_hidden_states=True).hidden_states
            whisper_feature.append(torch.stack(hidden, dim=2))
        whisper_feature = torch.cat(whisper_feature, dim=1)
        sr, audio_fps = 16000, 50
        fps = int(fps)
        whisper_idx_multiplier = audio_fps / fps
        num_frames = math.floor((librosa_length / sr) * fps)
        actual_length = math.floor((librosa_length / sr) * audio_fps)
        whisper_feature = whisper_feature[:, :actual_length, ...]
        padding_nums = math.ceil(whisper_idx_multiplier)
        whisper_feature = torch.cat([
            torch.zeros_like(whisper_feature[:, :padding_nums * audio_padding_length_left]),
            whisper_feature,
            torch.zeros_like(whisper_feature[:, :padding_nums * 3 * audio_padding_length_right]),
        ], 1)
        prompts = []
        for frame_index in range(num_frames):
            audio_index = math.floor(frame_index * whisper_idx_multiplier)
            clip = whisper_feature[:, audio_index: audio_index + audio_feature_length_per_frame]
            assert clip.shape[1] == audio_feature_length_per_frame
            prompts.append(clip)
        prompts_t = torch.cat(prompts, dim=0)  # T, 10, 5, 384
        return prompts_t.reshape(prompts_t.shape[0], -1, prompts_t.shape[-1])


def fixed_landmarks(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """68 landmarks spanning x1..x2 horizontally and reaching y2 (the chin), with landmark 29
    (between mouth and nose) at the height that makes MuseTalk's box start at y1."""
    marks = np.zeros((68, 2), dtype=np.int32)
    marks[:, 0] = np.linspace(x1, x2, 68).astype(np.int32)
    middle = (y1 + y2) // 2
    marks[:, 1] = middle
    marks[8, 1] = y2          # the chin: the lowest landmark
    marks[29, 1] = middle
    marks[0, 1] = y1 + 1
    return marks


class StandInDetector:
    """A fixed face box on every frame that is not (almost) black."""

    def __init__(self, box: Tuple[int, int, int, int]) -> None:
        self.box = box
        self.calls = 0

    def __call__(self, frame: np.ndarray) -> Tuple[np.ndarray, Optional[List[float]]]:
        self.calls += 1
        landmarks = fixed_landmarks(*self.box)
        if float(frame.mean()) < 8:
            return landmarks, None
        return landmarks, [float(v) for v in self.box]


def crop_box(box: Sequence[int], expand: float = 1.5) -> List[int]:
    """musetalk.utils.blending.get_crop_box."""
    x, y, x1, y1 = box
    x_c, y_c = (x + x1) // 2, (y + y1) // 2
    s = int(max(x1 - x, y1 - y) // 2 * expand)
    return [x_c - s, y_c - s, x_c + s, y_c + s]


class StandInBlending:
    """get_image_prepare_material / get_image_blending without the face-parsing network: the
    mask is the lower half of the face box (the talking area), at the crop box's size."""

    def __init__(self) -> None:
        self.prepared = 0
        self.blended = 0

    def prepare_material(self, frame: np.ndarray, box: Sequence[int]) -> Tuple[np.ndarray, List[int]]:
        self.prepared += 1
        x, y, x1, y1 = box
        crop = crop_box(box)
        size = crop[2] - crop[0]
        mask = np.zeros((size, size), dtype=np.uint8)
        top = max(0, (y + y1) // 2 - crop[1])
        mask[top:max(0, y1 - crop[1]), max(0, x - crop[0]):max(0, x1 - crop[0])] = 255
        return mask, crop

    def blend(self, frame: np.ndarray, face: np.ndarray, box: Sequence[int], mask: np.ndarray,
              crop: Sequence[int]) -> np.ndarray:
        self.blended += 1
        out = frame.copy()
        x, y, x1, y1 = box
        height, width = out.shape[:2]
        region = out[max(0, y):min(height, y1), max(0, x):min(width, x1)]
        region[:] = face[max(0, -y):max(0, -y) + region.shape[0], max(0, -x):max(0, -x) + region.shape[1]]
        return out


def attach_standins(engine: Any, box: Tuple[int, int, int, int]) -> Any:
    """Give a MuseTalkEngine stand-in models; returns a namespace of them for assertions."""
    class Models:
        pass
    models = Models()
    models.vae = StandInVAE()
    models.unet = StandInUNet()
    models.pe = StandInPositionalEncoding()
    models.audio = StandInAudioProcessor()
    models.whisper = StandInWhisper()
    models.detector = StandInDetector(box)
    models.blending = StandInBlending()
    engine.attach_models(
        torch=torch, device=torch.device("cpu"), vae=models.vae, unet=models.unet, pe=models.pe,
        audio=models.audio, whisper=models.whisper, detect=models.detector,
        prepare_material=models.blending.prepare_material, blend=models.blending.blend,
    )
    return models
