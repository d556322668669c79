"""The image build's last step: the environment really imports and the engine really loads.

    CUDA_VISIBLE_DEVICES= python3 /opt/fleet-inference/checks/build_check.py

A build has no GPU, so this loads the engine with INFERENCE_DEVICE=cpu: every import MuseTalk
needs (mmcv's compiled ops, mmpose's and mmdet's registries for DWPose, diffusers, transformers,
librosa/numba), every weight file from MUSETALK_DIR/models through load_all_model, Whisper,
BiSeNet, DWPose and S3FD, and one UNet step. A broken environment or a missing weight fails the
build instead of showing up as SETUP_FAILED on a GPU box.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    started = time.monotonic()
    # The compiled and registry-heavy imports first, so a failure names the package.
    import mmcv.ops  # noqa: F401 - mmcv built for this torch/CUDA (the CDN wheel, not an sdist)
    import mmdet.models  # noqa: F401 - DWPose's CSPNeXt backbone is registered in mmdet's scope
    import mmpose.apis  # noqa: F401
    import diffusers  # noqa: F401
    import librosa  # noqa: F401 - pulls numba, which compiles on first use
    import transformers  # noqa: F401

    from musetalk_engine import MuseTalkEngine
    engine = MuseTalkEngine.from_env({**os.environ, "INFERENCE_DEVICE": "cpu", "MUSETALK_ENCODER": "libx264"})
    engine.load()
    print(f"build_check: ok, engine {engine.name} loaded on CPU in {time.monotonic() - started:.1f} s "
          f"(dtype {engine.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
