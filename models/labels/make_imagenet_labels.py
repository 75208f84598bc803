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
and output file, for models/labels/README.md.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path, help="timm-*.whl from 'pip download --no-deps timm'")
    ap.add_argument("--out-dir", type=Path, default=HERE)
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


if __name__ == "__main__":
    main()
