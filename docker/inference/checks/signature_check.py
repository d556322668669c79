"""Does the MuseTalk source have every name and keyword argument musetalk_engine.py uses?

    python3 checks/signature_check.py <MuseTalk source dir>

Reads the source with `ast` only (nothing is imported, so it runs anywhere: in the image build
right after the source is fetched at MUSETALK_COMMIT, or on a checkout). A bump of the commit that
renames a function or a keyword argument fails here, at build time, instead of in the first job.
Exit status 0 when everything is found; 1 with one line per problem otherwise.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]

# What the engine calls: (module file, "function" or "Class.method" or "Class" (its __init__),
# keyword arguments it passes, positional arguments it passes).
CALLS: List[Tuple[str, str, Sequence[str], int]] = [
    ("musetalk/utils/utils.py", "load_all_model", ("unet_model_path", "vae_type", "unet_config", "device"), 0),
    ("musetalk/utils/audio_processor.py", "AudioProcessor", ("feature_extractor_path",), 0),
    ("musetalk/utils/audio_processor.py", "AudioProcessor.get_audio_feature", ("weight_dtype",), 1),
    ("musetalk/utils/audio_processor.py", "AudioProcessor.get_whisper_chunk",
     ("fps", "audio_padding_length_left", "audio_padding_length_right"), 5),
    ("musetalk/utils/blending.py", "get_image_prepare_material", ("fp", "mode"), 2),
    ("musetalk/utils/blending.py", "get_image_blending", (), 5),
    ("musetalk/utils/face_parsing/__init__.py", "FaceParsing", ("left_cheek_width", "right_cheek_width"), 0),
    ("musetalk/utils/face_detection/api.py", "FaceAlignment.get_detections_for_batch", (), 1),
    ("musetalk/models/vae.py", "VAE.get_latents_for_unet", (), 1),
    ("musetalk/models/vae.py", "VAE.decode_latents", (), 1),
    ("musetalk/models/unet.py", "PositionalEncoding", ("d_model",), 0),
]
# Module-level names the engine reads: (module file, name).
NAMES: List[Tuple[str, str]] = [
    ("musetalk/utils/preprocessing.py", "model"),   # DWPose, built at import
    ("musetalk/utils/preprocessing.py", "fa"),      # S3FD FaceAlignment, built at import
    ("musetalk/models/unet.py", "UNet"),
    ("musetalk/models/vae.py", "VAE"),
]
# Attributes the engine reads or assigns on objects MuseTalk builds: (module file, class, attribute).
ATTRIBUTES: List[Tuple[str, str, str]] = [
    ("musetalk/models/vae.py", "VAE", "vae"),
    ("musetalk/models/unet.py", "UNet", "model"),
]
# Files the engine's load() needs beside the code.
FILES = [
    "musetalk/utils/dwpose/rtmpose-l_8xb32-270e_coco-ubody-wholebody-384x288.py",
    "musetalk/utils/face_detection/detection/sfd/sfd_detector.py",
]


def _parse(root: str, relative: str, cache: Dict[str, Optional[ast.Module]]) -> Optional[ast.Module]:
    if relative not in cache:
        path = os.path.join(root, relative)
        try:
            with open(path, encoding="utf-8") as handle:
                cache[relative] = ast.parse(handle.read(), filename=path)
        except (OSError, SyntaxError):
            cache[relative] = None
    return cache[relative]


def _find(tree: ast.Module, dotted: str) -> Optional[Union[FunctionNode, ast.ClassDef]]:
    scope: Sequence[ast.stmt] = tree.body
    found: Optional[Union[FunctionNode, ast.ClassDef]] = None
    for part in dotted.split("."):
        found = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and n.name == part), None)
        if found is None:
            return None
        scope = found.body
    return found


def _accepts(function: FunctionNode, keywords: Sequence[str], positional: int, is_method: bool) -> List[str]:
    args = function.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if is_method and names:
        names = names[1:]  # self
    problems = []
    keyword_names = set(names) | {a.arg for a in args.kwonlyargs}
    if args.kwarg is None:
        problems += [f"no keyword argument {k!r}" for k in keywords if k not in keyword_names]
    if args.vararg is None and positional > len(names):
        problems.append(f"takes {len(names)} positional arguments, the engine passes {positional}")
    return problems


def check(root: str) -> List[str]:
    cache: Dict[str, Optional[ast.Module]] = {}
    problems: List[str] = []
    for relative, dotted, keywords, positional in CALLS:
        tree = _parse(root, relative, cache)
        if tree is None:
            problems.append(f"{relative}: missing or not Python")
            continue
        node = _find(tree, dotted)
        if node is None:
            problems.append(f"{relative}: no {dotted}")
            continue
        is_method = "." in dotted
        if isinstance(node, ast.ClassDef):
            init = _find(tree, f"{dotted}.__init__")
            if init is None:
                if keywords or positional:
                    problems.append(f"{relative}: {dotted} has no __init__ taking {list(keywords)}")
                continue
            node, is_method = init, True
        problems += [f"{relative}: {dotted}: {p}" for p in _accepts(node, keywords, positional, is_method)]
    for relative, name in NAMES:
        tree = _parse(root, relative, cache)
        if tree is None:
            problems.append(f"{relative}: missing or not Python")
            continue
        defined = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if name not in defined:
            problems.append(f"{relative}: no module-level {name}")
    for relative, cls, attribute in ATTRIBUTES:
        tree = _parse(root, relative, cache)
        node = _find(tree, cls) if tree is not None else None
        if not isinstance(node, ast.ClassDef):
            problems.append(f"{relative}: no class {cls}")
            continue
        assigned = {t.attr for n in ast.walk(node) if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}
        if attribute not in assigned:
            problems.append(f"{relative}: {cls} never sets self.{attribute}")
    problems += [f"{relative}: missing" for relative in FILES if not os.path.isfile(os.path.join(root, relative))]
    return problems


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    problems = check(argv[1])
    for problem in problems:
        print(f"signature_check: {problem}", file=sys.stderr)
    if problems:
        print(f"signature_check: {len(problems)} problems: musetalk_engine.py does not match this MuseTalk source",
              file=sys.stderr)
        return 1
    print(f"signature_check: ok ({len(CALLS)} calls, {len(NAMES)} names, {len(ATTRIBUTES)} attributes, {len(FILES)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
