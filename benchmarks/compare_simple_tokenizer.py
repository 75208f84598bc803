"""Where edge_embedder's CLIP tokenizer differs from OpenAI's reference tokenizer (information only).

OpenAI's reference is open_clip's ``SimpleTokenizer`` (copied from
openai/CLIP): ``ftfy.fix_text`` + double ``html.unescape`` + whitespace
collapse (``str.split``) + lowercase, its own regex split (``regex`` module),
BPE, zero padding, EOT written into the last slot on overflow.
edge_embedder follows transformers' ``CLIPTokenizerFast`` (``tokenizer.json``):
NFC + ``\\s+`` -> " " + lowercase, no ftfy, no HTML unescape.

This script loads ``open_clip/tokenizer.py`` straight from the open-clip-torch
wheel (no install; it needs torch, numpy and regex), runs both on
``tests/fixtures/text_corpus.json`` and prints every string whose ids differ,
ignoring padding (the reference pads with 0, edge_embedder's default with EOS).
ftfy is used when importable (``--ftfy-path`` adds a folder to ``sys.path``, e.g.
one made with ``pip install --target /tmp/ftfylib ftfy``); otherwise
``ftfy.fix_text`` is replaced by the identity and the output says so.

    pip download --no-deps open-clip-torch==3.3.0 -d /tmp/oc
    python benchmarks/compare_simple_tokenizer.py /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl [--ftfy-path /tmp/ftfylib]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import types
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_embedder.text import ClipTokenizer  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "text_corpus.json"
TOKENIZER_JSON = ROOT / "converters" / "clip_tokenizer" / "tokenizer.json"


def load_simple_tokenizer(wheel: Path, workdir: Path, ftfy_path: str | None):
    with zipfile.ZipFile(wheel) as zf:
        for member in ("open_clip/tokenizer.py", "open_clip/bpe_simple_vocab_16e6.txt.gz"):
            zf.extract(member, workdir)
    if ftfy_path:
        sys.path.insert(0, ftfy_path)
    try:
        import ftfy  # noqa: F401

        ftfy_note = f"ftfy {getattr(ftfy, '__version__', '?')}"
    except ImportError:
        stub = types.ModuleType("ftfy")
        stub.fix_text = lambda text: text
        sys.modules["ftfy"] = stub
        ftfy_note = "ftfy NOT installed: fix_text replaced by the identity"
    spec = importlib.util.spec_from_file_location("oc_tokenizer", workdir / "open_clip" / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SimpleTokenizer(), ftfy_note


def readable(reference, token_id: int) -> str:
    """A token as text: its bytes decoded (partial UTF-8 shown as \\x..), ``</w>`` as ``_``."""
    symbols = reference.decoder[token_id]
    if symbols.startswith("<") and token_id in reference.all_special_ids:
        return symbols
    end = symbols.endswith("</w>")
    raw = bytes(reference.byte_decoder[c] for c in symbols[: -4 if end else None])
    return raw.decode("utf-8", errors="backslashreplace") + ("_" if end else "")


def unpadded(ids, length):
    return [int(i) for i in ids[:length]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="open_clip_torch-*.whl")
    parser.add_argument("--ftfy-path", help="folder to add to sys.path for ftfy")
    parser.add_argument("--json", type=Path, help="also write the differences as JSON here")
    args = parser.parse_args(argv)

    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    ours = ClipTokenizer.from_file(TOKENIZER_JSON)
    with tempfile.TemporaryDirectory() as tmp:
        reference, ftfy_note = load_simple_tokenizer(args.wheel, Path(tmp), args.ftfy_path)
        ref_rows = reference(corpus, context_length=77).tolist()
    diffs = []
    for text, row in zip(corpus, ref_rows):
        enc = ours.encode(text)
        ref = row[: max(i for i, t in enumerate(row) if t != 0) + 1]  # EOT is never 0, so this strips the padding
        mine = unpadded(enc.ids, enc.length)
        if ref != mine:
            diffs.append({"text": text, "reference": ref, "edge_embedder": mine,
                          "reference_tokens": [readable(reference, i) for i in ref],
                          "edge_embedder_tokens": [readable(reference, i) for i in mine]})
    print(f"# {len(corpus)} corpus strings, {len(diffs)} differ ({ftfy_note}); padding ignored")
    for d in diffs:
        print(f"\n{d['text'][:70]!r}")
        print(f"  reference     {' '.join(d['reference_tokens'][1:-1])[:160]}")
        print(f"  edge_embedder {' '.join(d['edge_embedder_tokens'][1:-1])[:160]}")
    if args.json:
        args.json.write_text(json.dumps({"ftfy": ftfy_note, "differences": diffs}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
