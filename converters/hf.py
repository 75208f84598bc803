"""Hugging Face helpers shared by the ViT and CLIP configs.

* :func:`load_config` -- a checkpoint's config, with one-line errors for a
  missing / incomplete folder and for a checkpoint of another architecture.
* :func:`load_image_processor` -- the checkpoint's image processor, always
  the PIL backend (``backend="pil"``, transformers 5's spelling of
  ``use_fast=False``): the slow, Pillow-based processors are the ones
  ``edge_embedder``'s ``pil`` sampler reproduces to float precision.
* :func:`processor_recipe` -- the processor's resize / crop / normalization
  as data: an ``edge_embedder.vision.Recipe`` plus mean / std in pixel units.
* :func:`load_fast_tokenizer` -- the checkpoint's tokenizer, a transformers
  "fast" one (backed by ``tokenizers``), whose ``tokenizer.json`` the text
  file carries.
* :func:`weights_space_id` -- the embedding-space id of a checkpoint: a
  sha256 over every parameter of the loaded model.

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from edge_embedder.errors import first_line

from .errors import CheckpointError

__all__ = [
    "quiet_transformers",
    "load_config",
    "load_image_processor",
    "processor_recipe",
    "checkpoint_license",
    "from_pretrained",
    "load_fast_tokenizer",
    "weights_space_id",
    "IMAGE_FILES",
    "TEXT_FILES",
]

#: What a Hugging Face hub id looks like (``name`` or ``org/name``); anything else that does not exist is a missing folder.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: What a checkpoint folder needs besides config and weights, per tower: alternatives per entry.
#: (transformers 5's ``*Processor.save_pretrained`` writes ``processor_config.json`` with the image
#: processor nested inside, older releases and ``*ImageProcessor.save_pretrained`` write
#: ``preprocessor_config.json``; ``AutoImageProcessor.from_pretrained`` reads both.)
IMAGE_FILES: tuple[tuple[str, ...], ...] = (("preprocessor_config.json", "processor_config.json"),)
TEXT_FILES: tuple[tuple[str, ...], ...] = (("tokenizer.json", "vocab.json"),)


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' info / warning chatter and progress bars."""
    import transformers

    tl = transformers.logging
    old = tl.get_verbosity()
    tl.set_verbosity_error()
    tl.disable_progress_bar()
    try:
        yield
    finally:
        tl.set_verbosity(old)
        tl.enable_progress_bar()


def _check_folder(model: str, needs: Sequence[Sequence[str]] = IMAGE_FILES) -> None:
    p = Path(model)
    if not p.exists():
        if not _HUB_ID.fullmatch(model):
            raise CheckpointError(f"{model}: no such checkpoint folder")
        return  # may be a hub id: transformers resolves it (load_config says when it cannot)
    if not p.is_dir():
        raise CheckpointError(f"{model}: expected a checkpoint folder (save_pretrained output), got a file")
    missing = [] if (p / "config.json").is_file() else ["config.json"]
    missing += [alts[0] + "".join(f" (or {a})" for a in alts[1:])
                for alts in needs if not any((p / f).is_file() for f in alts)]
    if not any((p / f).is_file() for f in _WEIGHT_FILES):
        missing.append("model.safetensors (or pytorch_model.bin)")
    if missing:
        what = "its tokenizer" if needs is TEXT_FILES else "its image processor"
        raise CheckpointError(
            f"{model}: checkpoint folder is missing {', '.join(missing)} "
            f"(expected the output of save_pretrained for the model and {what})"
        )


def load_config(model: str, arch: str, model_types: Sequence[str],
                suggest: Optional[Callable[[str], Optional[str]]] = None,
                needs: Sequence[Sequence[str]] = IMAGE_FILES) -> Any:
    """``AutoConfig.from_pretrained(model)``, checked to be one of ``model_types``.

    ``suggest(model_type)`` may name the architecture to use instead; ``needs``
    lists the files the folder must hold besides config and weights.
    """
    _check_folder(model, needs)
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(model)
    except Exception as exc:  # OSError, ValueError, HF hub errors: all one line
        if not Path(model).exists():
            raise CheckpointError(
                f"{model}: no such checkpoint folder, and not loadable as a Hugging Face hub id "
                f"(offline, or not in the local cache: {first_line(exc)})"
            ) from None
        raise CheckpointError(f"{model}: cannot load the model config: {first_line(exc)}") from None
    if config.model_type not in model_types:
        other = suggest(config.model_type) if suggest is not None else None
        suggestion = f" (use --arch {other})" if other else ""
        raise CheckpointError(
            f"{model}: checkpoint is a {config.model_type!r} model, expected --arch {arch} "
            f"(model_type {' or '.join(repr(t) for t in model_types)}){suggestion}"
        )
    return config


def from_pretrained(cls: Any, model: str, **kwargs: Any) -> tuple[Any, dict]:
    """``cls.from_pretrained(model)`` in eval mode, with its loading info; one-line errors."""
    try:
        with quiet_transformers():
            m, info = cls.from_pretrained(model, output_loading_info=True, **kwargs)
    except Exception as exc:
        raise CheckpointError(f"{model}: cannot load the weights as {cls.__name__}: {first_line(exc)}") from None
    if info.get("mismatched_keys"):
        raise CheckpointError(
            f"{model}: weights do not match the config: {sorted(info['mismatched_keys'])[:3]}"
        )
    return m.eval(), info


def load_image_processor(model: str) -> Any:
    from transformers import AutoImageProcessor

    try:
        with quiet_transformers():
            return AutoImageProcessor.from_pretrained(model, backend="pil")
    except Exception as exc:
        raise CheckpointError(f"{model}: cannot load the image processor: {first_line(exc)}") from None


def load_fast_tokenizer(model: str) -> Any:
    """``AutoTokenizer.from_pretrained(model)``, required to be a fast (``tokenizers``-backed) tokenizer."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(model)
    except Exception as exc:
        raise CheckpointError(f"{model}: cannot load the tokenizer: {first_line(exc)}") from None
    if getattr(tok, "backend_tokenizer", None) is None:
        raise CheckpointError(f"{model}: the tokenizer ({type(tok).__name__}) is not backed by the tokenizers "
                              "library, so it cannot travel as a tokenizer.json")
    return tok


def weights_space_id(net: Any) -> str:
    """``weights-sha256:<hex>``: sha256 over every parameter of ``net`` (name, dtype, shape, bytes; names sorted).

    Both towers of one checkpoint are exported from the same loaded model, so
    they get the same id; two checkpoints that differ in any weight get
    different ones. Parameters are hashed as they are in memory after loading
    (float32 CPU tensors, little endian).
    """
    import hashlib

    import torch

    h = hashlib.sha256(b"edge_embedder.embedding_space/weights-v1\0")
    for name, p in sorted(net.named_parameters(), key=lambda kv: kv[0]):
        t = p.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return f"weights-sha256:{h.hexdigest()}"


_RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def _get(proc: Any, key: str, default: Any = None) -> Any:
    v = getattr(proc, key, default)
    return default if v is None else v


def _size(d: Any) -> dict[str, Optional[int]]:
    keys = ("height", "width", "shortest_edge", "longest_edge", "max_height", "max_width")
    if d is None:
        return {}
    if isinstance(d, int):
        return {"height": d, "width": d}
    return {k: (d.get(k) if isinstance(d, dict) else getattr(d, k, None)) for k in keys}


def processor_recipe(proc: Any, model: str) -> tuple[Any, tuple[float, ...], tuple[float, ...], tuple[int, int]]:
    """(Recipe, mean_px, std_px, (H, W)) reproducing ``proc`` on 0..255 RGB pixels.

    transformers computes ``(x * rescale_factor - mean) / std``, which is
    ``(x - mean / rescale_factor) / (std / rescale_factor)`` in pixel units.
    Raises ``CheckpointError`` for processor settings the runtime cannot
    reproduce (longest-edge limits, padding, no resize).
    """
    from edge_embedder.vision import Recipe

    name = type(proc).__name__
    unsupported = [k for k in ("do_pad", "do_reduce_labels") if _get(proc, k, False)]
    if unsupported:
        raise CheckpointError(f"{model}: {name} uses {unsupported}, which edge_embedder cannot reproduce")
    resample = _get(proc, "resample", 2)
    interpolation = _RESAMPLE_NAMES.get(int(resample))
    if interpolation is None:
        raise CheckpointError(f"{model}: {name} resample={resample!r} is not a PIL filter")
    if not _get(proc, "do_resize", True):
        raise CheckpointError(f"{model}: {name} has do_resize=False; a fixed input size needs a resize")
    size = _size(_get(proc, "size"))
    crop = None
    if _get(proc, "do_center_crop", False):
        c = _size(_get(proc, "crop_size"))
        if not (c.get("height") and c.get("width")):
            raise CheckpointError(f"{model}: {name} crop_size {c} has no height / width")
        crop = (int(c["height"]), int(c["width"]))
    if size.get("shortest_edge") and not size.get("longest_edge"):
        if crop is None:
            raise CheckpointError(f"{model}: {name} resizes the shortest edge without a centre crop: no fixed input size")
        recipe = Recipe(sampler="pil", resize="shortest_edge", size=int(size["shortest_edge"]), crop=crop,
                        interpolation=interpolation)
        hw = crop
    elif size.get("height") and size.get("width") and not size.get("shortest_edge"):
        hw = (int(size["height"]), int(size["width"]))
        recipe = Recipe(sampler="pil", resize="stretch", size=hw, crop=crop, interpolation=interpolation)
        hw = crop or hw
    else:
        raise CheckpointError(f"{model}: {name} size {size} is not a fixed size or a shortest edge")

    scale = float(_get(proc, "rescale_factor", 1 / 255)) if _get(proc, "do_rescale", True) else 1.0
    if _get(proc, "do_normalize", True):
        mean = _get(proc, "image_mean", [0.0, 0.0, 0.0])
        std = _get(proc, "image_std", [1.0, 1.0, 1.0])
    else:
        mean, std = [0.0], [1.0]
    mean = [float(v) for v in (mean if isinstance(mean, (list, tuple)) else [mean])]
    std = [float(v) for v in (std if isinstance(std, (list, tuple)) else [std])]
    if len(mean) == 1:
        mean = mean * 3
    if len(std) == 1:
        std = std * 3
    mean_px = tuple(m / scale for m in mean)
    std_px = tuple(s / scale for s in std)
    return recipe, mean_px, std_px, hw


_LICENSE_RE = re.compile(r"^license:\s*(\S.*)$", re.MULTILINE)


def checkpoint_license(model: str) -> Optional[str]:
    """The ``license:`` of the model card front matter in a local folder, if any."""
    readme = Path(model) / "README.md"
    try:
        text = readme.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    m = _LICENSE_RE.search(front)
    return m.group(1).strip().strip("'\"") if m else None


def commit_hash(config: Any) -> Optional[str]:
    return getattr(config, "_commit_hash", None)
