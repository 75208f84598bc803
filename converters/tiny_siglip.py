"""A tiny random SigLIP checkpoint with a SentencePiece tokenizer trained here, for examples and tests (no network).

    python -m edge_embedder.convert.tiny_siglip tiny-siglip [--layout processor|separate] [--seed 0]

Writes a ``save_pretrained`` folder: a ``SiglipModel`` with a 32-d, 2-layer
vision tower (32x32 images, 8x8 patches, attention-pooling head) and text
tower (64 positions, as the released checkpoints; no causal mask), random
weights with ``logit_scale = log(10)`` and ``logit_bias = -1`` (transformers
initializes both to 0, which makes every sigmoid score 0.5); a
``SiglipImageProcessor`` (32x32, bicubic, mean / std 0.5); and a
``SiglipTokenizer`` on a unigram SentencePiece model trained by
:func:`train_sentencepiece` (``sentencepiece``'s trainer, one thread, on
sentences made from the prompt templates shipped with edge_embedder and a fixed
word list: about a thousand pieces). The tokenizer returns no attention mask
(``model_input_names=["input_ids"]``), as the released SigLIP tokenizers.

``--layout processor`` (default) saves through ``SiglipProcessor`` as
transformers 5 does (``processor_config.json``, ``spiece.model``, no
``tokenizer.json``); ``--layout separate`` saves the image processor and the
tokenizer on their own (``preprocessor_config.json``), as older checkpoints
are laid out.

Both towers convert with ``edge-embedder convert --arch siglip --tower image|text``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path
from typing import Optional

__all__ = ["build", "train_sentencepiece", "training_sentences", "LAYOUTS"]

LAYOUTS = ("processor", "separate")

_WORDS = (
    "cat dog car bird horse ship truck airplane frog deer bicycle tree flower mountain river street house bridge "
    "lighthouse teapot guitar apple banana pizza coffee cup table chair window door book phone computer camera "
    "rocket astronaut beach forest city night morning winter summer snow rain sunset child man woman people "
    "red blue green yellow black white small large old young two three four running sitting sleeping playing"
).split()
_EXTRA = (
    "Ein Hund läuft über die Straße", "un café crème sur la table", "el perro come una manzana", "Ο σκύλος τρέχει",
    "Собака бежит по улице", "猫が窓のそばで寝ている", "一只猫在睡觉", "고양이가 잔다", "1 2 3 10 42 100 2024 3.14",
)


def training_sentences(n: int = 4000, seed: int = 0) -> list[str]:
    """Deterministic training text: prompt templates filled with words, plus a few non-English lines."""
    import random

    from edge_embedder.zero_shot import OPENAI_IMAGENET_TEMPLATES

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))
        out.append(rng.choice(OPENAI_IMAGENET_TEMPLATES).format(words))
    return out + list(_EXTRA) * 20


def train_sentencepiece(path: str | Path, *, vocab_size: int = 1000, seed: int = 0) -> Path:
    """Train a unigram SentencePiece model on :func:`training_sentences` (pad 0, eos 1, unk 2, no bos)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_sentences(seed=seed)), model_writer=buf, vocab_size=vocab_size,
        model_type="unigram", hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, num_threads=1, minloglevel=2,
    )
    path = Path(path)
    path.write_bytes(buf.getvalue())
    return path


def build(out: str | Path, *, seed: int = 0, layout: str = "processor", vocab_size: int = 1000,
          attention_mask: bool = False) -> Path:
    """Write the tiny checkpoint to ``out``; return the folder.

    ``attention_mask``: the tokenizer returns one (``SiglipTokenizer``'s own default; the
    released checkpoints' do not), for the converter's warning.
    """
    import tempfile

    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor, SiglipTokenizer

    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiny_siglip_") as tmp:
        spm_path = train_sentencepiece(Path(tmp) / "spiece.model", vocab_size=vocab_size, seed=seed)
        names = ["input_ids", "attention_mask"] if attention_mask else ["input_ids"]
        tok = SiglipTokenizer(vocab_file=str(spm_path), model_input_names=names)
        torch.manual_seed(seed)
        text = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id, bos_token_id=None)
        vision = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64)
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).eval()
        with torch.no_grad():
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(-1.0)
        model.save_pretrained(out)
        image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
        if layout == "processor":
            SiglipProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(out)
        else:
            image_processor.save_pretrained(out)
            tok.save_pretrained(out)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """The command line; returns the exit code (errors: one line on stderr, as ``edge-embedder`` does)."""
    import os
    import sys
    import tempfile

    from edge_embedder.exit_codes import ExitCode

    from .cli import _toolchain_output_to
    from .toolchain import INSTALL_HINT, missing_modules

    ap = argparse.ArgumentParser(prog="python -m edge_embedder.convert.tiny_siglip", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write (save_pretrained layout)")
    ap.add_argument("--layout", choices=LAYOUTS, default="processor",
                    help="processor: transformers 5's processor_config.json (default); separate: "
                    "preprocessor_config.json and the tokenizer files, as older checkpoints")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", "-v", action="store_true", help="show torch's and transformers' own output")
    args = ap.parse_args(argv)
    missing = missing_modules(("torch", "transformers", "sentencepiece"))
    if missing:
        print(f"edge-embedder: missing dependency: {', '.join(missing)} not installed: {INSTALL_HINT}", file=sys.stderr)
        return ExitCode.MISSING_DEPENDENCY
    log_path = None
    if not args.verbose:  # torch, torchao and transformers print import-time chatter on fd 2
        fd, log_path = tempfile.mkstemp(prefix="edge_embedder_tiny_siglip_", suffix=".log")
        os.close(fd)
    try:
        with _toolchain_output_to(log_path) as err:
            from .hf import quiet_transformers

            try:
                with quiet_transformers():
                    path = build(args.out, seed=args.seed, layout=args.layout)
            except (OSError, ValueError, RuntimeError) as exc:
                hint = f" (log: {log_path})" if log_path else ""
                print(f"edge-embedder: error: {args.out}: {exc}{hint}", file=err)
                log_path = None  # keep it
                return ExitCode.MODEL
    finally:
        if log_path is not None:
            os.unlink(log_path)
    files = sorted(p.name for p in Path(path).iterdir())
    print(f"wrote a tiny random SigLIP checkpoint to {path}: {json.dumps(files)}")
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
