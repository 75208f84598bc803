"""A tiny random CLIP checkpoint with CLIP's real tokenizer, for examples and tests (no network).

    python -m edge_embedder.convert.tiny_clip tiny-clip [--tokenizer DIR] [--legacy-eos] [--seed 0]

Writes a ``save_pretrained`` folder: a ``CLIPModel`` with a 32-d, 2-layer
vision tower (32x32 images) and text tower (CLIP's 49408-token vocabulary,
77 positions), 16-d projections, random weights (``initializer_factor=5``
so that photos and captions give clearly different vectors); a
``CLIPImageProcessor`` (shortest edge 32, centre crop 32x32, bicubic); and the
tokenizer found in ``--tokenizer`` (default: :data:`CLIP_TOKENIZER`, CLIP's
BPE vocabulary built from the open_clip wheel, which ships in this package
with its MIT licence: ``clip_tokenizer/README.md``). ``--legacy-eos`` writes ``eos_token_id = 2`` into the text
config, as configs written before transformers PR #24773 have it: such
towers pool at ``argmax(input_ids)`` instead of the first end-of-text token.

Both towers convert with ``edge-embedder convert --arch clip --tower image|text``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

__all__ = ["build", "CLIP_TOKENIZER", "DEFAULT_TOKENIZER"]

#: OpenAI CLIP's tokenizer (``tokenizer.json``, ``tokenizer_config.json``), shipped with the converters.
CLIP_TOKENIZER = Path(__file__).resolve().parent / "clip_tokenizer"
DEFAULT_TOKENIZER = CLIP_TOKENIZER


def build(out: str | Path, *, tokenizer: Optional[str | Path] = None, seed: int = 0, legacy_eos: bool = False) -> Path:
    """Write the tiny checkpoint to ``out``; return the folder."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

    tok_dir = Path(tokenizer) if tokenizer else DEFAULT_TOKENIZER
    if not (tok_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{tok_dir}: no tokenizer.json (a CLIP tokenizer folder is needed)")
    torch.manual_seed(seed)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, projection_dim=16)
    text = dict(vocab_size=49408, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                projection_dim=16, max_position_embeddings=77, bos_token_id=49406,
                eos_token_id=2 if legacy_eos else 49407, pad_token_id=1)
    cfg = CLIPConfig(vision_config=vision, text_config=text, projection_dim=16, initializer_factor=5.0)
    out = Path(out)
    CLIPModel(cfg).eval().save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    CLIPTokenizerFast.from_pretrained(str(tok_dir)).save_pretrained(out)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """The command line; returns the exit code (errors: one line on stderr, as ``edge-embedder`` does)."""
    import os
    import sys
    import tempfile

    from edge_embedder.exit_codes import ExitCode

    from .cli import _toolchain_output_to
    from .toolchain import INSTALL_HINT, missing_modules

    ap = argparse.ArgumentParser(prog="python -m edge_embedder.convert.tiny_clip", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write (save_pretrained layout)")
    ap.add_argument("--tokenizer", default=None, help="CLIP tokenizer folder (default: the one shipped with the converters)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--legacy-eos", action="store_true", help="eos_token_id = 2 in the text config (argmax pooling)")
    ap.add_argument("--verbose", "-v", action="store_true", help="show torch's and transformers' own output")
    args = ap.parse_args(argv)
    missing = missing_modules(("torch", "transformers"))
    if missing:
        print(f"edge-embedder: missing dependency: {', '.join(missing)} not installed: {INSTALL_HINT}", file=sys.stderr)
        return ExitCode.MISSING_DEPENDENCY
    tok_dir = Path(args.tokenizer) if args.tokenizer else DEFAULT_TOKENIZER
    if not (tok_dir / "tokenizer.json").is_file():
        print(f"edge-embedder: error: {tok_dir}: no tokenizer.json (pass --tokenizer DIR with a CLIP tokenizer folder)",
              file=sys.stderr)
        return ExitCode.USAGE
    log_path = None
    if not args.verbose:  # torch, torchao and transformers print import-time chatter on fd 2
        fd, log_path = tempfile.mkstemp(prefix="edge_embedder_tiny_clip_", suffix=".log")
        os.close(fd)
    try:
        with _toolchain_output_to(log_path) as err:
            from .hf import quiet_transformers

            try:
                with quiet_transformers():
                    path = build(args.out, tokenizer=tok_dir, seed=args.seed, legacy_eos=args.legacy_eos)
            except (OSError, ValueError, RuntimeError) as exc:
                hint = f" (log: {log_path})" if log_path else ""
                print(f"edge-embedder: error: {args.out}: {exc}{hint}", file=err)
                log_path = None  # keep it
                return ExitCode.MODEL
    finally:
        if log_path is not None:
            os.unlink(log_path)
    print(f"wrote a tiny random CLIP checkpoint to {path}")
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
