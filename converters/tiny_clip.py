"""A tiny random CLIP checkpoint with CLIP's real tokenizer, for examples and tests (no network).

    python -m edge_embedder.convert.tiny_clip tiny-clip [--tokenizer DIR] [--legacy-eos] [--seed 0]

Writes a ``save_pretrained`` folder: a ``CLIPModel`` with a 32-d, 2-layer
vision tower (32x32 images) and text tower (CLIP's 49408-token vocabulary,
77 positions), 16-d projections, random weights (``initializer_factor=5``
so that photos and captions give clearly different vectors); a
``CLIPImageProcessor`` (shortest edge 32, centre crop 32x32, bicubic); and the
tokenizer found in ``--tokenizer`` (default: the repository's
``tests/fixtures/clip_tokenizer``, CLIP's BPE vocabulary built from the
open_clip wheel). ``--legacy-eos`` writes ``eos_token_id = 2`` into the text
config, as configs written before transformers PR #24773 have it: such
towers pool at ``argmax(input_ids)`` instead of the first end-of-text token.

Both towers convert with ``edge-embedder convert --arch clip --tower image|text``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

__all__ = ["build", "DEFAULT_TOKENIZER"]

#: CLIP's tokenizer in a source checkout of the repository.
DEFAULT_TOKENIZER = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "clip_tokenizer"


def build(out: str | Path, *, tokenizer: Optional[str | Path] = None, seed: int = 0, legacy_eos: bool = False) -> Path:
    """Write the tiny checkpoint to ``out``; return the folder."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

    tok_dir = Path(tokenizer) if tokenizer else DEFAULT_TOKENIZER
    if not (tok_dir / "tokenizer.json").is_file():
        raise SystemExit(f"{tok_dir}: no tokenizer.json (pass --tokenizer DIR with a CLIP tokenizer folder)")
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


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m edge_embedder.convert.tiny_clip", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write (save_pretrained layout)")
    ap.add_argument("--tokenizer", default=None, help=f"CLIP tokenizer folder (default: {DEFAULT_TOKENIZER})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--legacy-eos", action="store_true", help="eos_token_id = 2 in the text config (argmax pooling)")
    args = ap.parse_args(argv)
    from .hf import quiet_transformers

    with quiet_transformers():
        path = build(args.out, tokenizer=args.tokenizer, seed=args.seed, legacy_eos=args.legacy_eos)
    print(f"wrote a tiny random CLIP checkpoint to {path}")


if __name__ == "__main__":
    main()
