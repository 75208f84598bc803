"""Text the tokenizer library refuses, and a tokenizer that does not fit its model."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_embedder import MetadataError, TextEmbedder, TextInputError
from edge_embedder.cli import main as cli
from edge_embedder.metadata import TOKENIZER_KEY, populate_tflite_metadata, read_tflite_metadata
from edge_embedder.search import EmbeddingIndex
from edge_embedder.text import ClipTokenizer, check_text
from edge_embedder.text.tokenizer import KNOWN_ENCODING_TEXTS, known_encodings

from .conftest import ROOT
from .robust_models import text_model, tokenizer_json
from .text_models import TOKENIZER_ENTRY, TOKENIZER_JSON

pytest.importorskip("tokenizers")
pytest.importorskip("onnx")

#: Strings no tokenizer can encode: lone surrogates (undecodable bytes via surrogateescape, a lone high or
#: low surrogate, half a pair at the end) and a UTF-16 pair that was never joined.
BAD_TEXTS = {
    "surrogateescape byte": b"caf\xe9".decode("utf-8", "surrogateescape"),
    "lone high surrogate": "\ud800",
    "lone low surrogate at the end": "text\udfff",
    "unjoined UTF-16 pair": "smile \ud83d\ude00",
    "high surrogate then text": "\udbffabc",
}
GOOD_TEXTS = ["", "café 東京の猫 🐱", "\U0010ffff", "\x00 nul", "\ufeff bom", "<|endoftext|>"]


@pytest.fixture(scope="module")
def text_path(tmp_path_factory):
    return text_model(tmp_path_factory.mktemp("text") / "t.onnx")


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_text_that_is_not_valid_unicode_is_a_text_input_error_everywhere(text_path, name):
    bad = BAD_TEXTS[name]
    with pytest.raises(TextInputError) as info:
        check_text(bad)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    assert "not valid Unicode" in str(info.value) and "U+D" in str(info.value)
    tok = ClipTokenizer(TOKENIZER_JSON.read_bytes())
    with pytest.raises(TextInputError):
        tok.encode(bad)
    with pytest.raises(TextInputError, match=r"texts\[1\]"):
        tok.encode_batch(["fine", bad])
    with TextEmbedder.create_from_model_path(text_path) as t:
        with pytest.raises(TextInputError):
            t.embed(bad)
        with pytest.raises(TextInputError, match=r"texts\[2\]"):
            t.embed_batch(["a", "b", bad])
        index = EmbeddingIndex.from_arrays(["x", "y"], np.eye(2, 4, dtype=np.float32), space=t.embedding_space_id)
        with pytest.raises(TextInputError):
            index.search_text(t, bad)


def test_the_messages_say_what_the_code_point_is():
    with pytest.raises(TextInputError, match="undecodable byte 0xe9"):
        check_text(BAD_TEXTS["surrogateescape byte"])
    with pytest.raises(TextInputError, match="half of a UTF-16 surrogate pair"):
        check_text(BAD_TEXTS["unjoined UTF-16 pair"])
    with pytest.raises(TextInputError, match="position 4"):
        check_text(BAD_TEXTS["lone low surrogate at the end"])
    with pytest.raises(TextInputError, match="must be a str, got bytes"):
        check_text(b"bytes")


@pytest.mark.parametrize("text", GOOD_TEXTS)
def test_valid_unusual_text_still_encodes_as_transformers_does(text):
    tok = ClipTokenizer(TOKENIZER_JSON.read_bytes())
    assert check_text(text) is text
    enc = tok.encode(text)
    assert enc.ids[0] == 49406 and enc.ids[enc.length - 1] == 49407


def test_zero_shot_labels_and_templates_are_checked(clip_pair):
    from edge_embedder import ZeroShotImageClassifier

    with ZeroShotImageClassifier.create_from_model_paths(clip_pair["image"], clip_pair["text"]) as zs:
        for bad in BAD_TEXTS.values():
            with pytest.raises(TextInputError, match=r"candidate_labels\[1\]"):
                zs.classify(np.zeros((32, 32, 3), np.uint8), ["cat", bad])
            with pytest.raises(TextInputError, match="hypothesis_template"):
                zs.label_embeddings(["cat"], hypothesis_template="a photo of {}" + bad)
            with pytest.raises(TextInputError, match="templates"):
                zs.label_embeddings(["cat"], templates=["a {}", bad + " {}"])
        assert zs.classify(np.zeros((32, 32, 3), np.uint8), ["cat", "café 🐱"])  # valid non-ASCII works


# -- the command line: every text argument ------------------------------------------------------


def _run_cli(args: list, tmp_path) -> subprocess.CompletedProcess:
    """Run the CLI with raw bytes arguments (as a shell passes a non-UTF-8 argument)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "edge_embedder", *args], cwd=tmp_path, env=env,
                          capture_output=True, timeout=300)


@pytest.mark.slow
def test_cli_text_arguments_that_are_not_utf8_are_one_line_errors(clip_pair, tmp_path):
    text, image = os.fsencode(clip_pair["text"]), os.fsencode(clip_pair["image"])
    bad = b"caf\xe9"
    index = tmp_path / "i.npz"
    with TextEmbedder.create_from_model_path(clip_pair["text"]) as t:  # an index of the text tower's space
        space, dim = t.embedding_space_id, t.model_spec.outputs[0].size
    EmbeddingIndex.from_arrays(["x"], np.ones((1, dim), np.float32), space=space).save(index)
    commands = {
        "search --text": [b"search", os.fsencode(index), b"--text", bad, b"--text-model", text],
        "similarity --text": [b"similarity", b"--text", b"ok", b"--text", bad, b"--text-model", text],
        "zero-shot --labels": [b"zero-shot", image, b"--image-model", image, b"--text-model", text,
                               b"--labels", b"cat," + bad],
        "zero-shot --template": [b"zero-shot", image, b"--image-model", image, b"--text-model", text,
                                 b"--labels", b"cat", b"--template", bad + b" {}"],
    }
    for name, args in commands.items():
        r = _run_cli(args, tmp_path)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 2, (name, err)
        assert err.count("\n") == 1 and "not valid Unicode" in err and "0xe9" in err, (name, err)
        assert b"Traceback" not in r.stderr and r.stdout == b"", name
    # embed-text: one record per text, the bad one skipped and listed (exit 1), the good one embedded
    r = _run_cli([b"embed-text", b"ok", bad, b"--model", text], tmp_path)
    assert r.returncode == 1 and b"Traceback" not in r.stderr, r.stderr
    records = json.loads(r.stdout)
    assert "embeddings" in records[0] and records[1]["error"]["type"] == "TextInputError"
    assert "0xe9" in records[1]["error"]["reason"]
    r = _run_cli([b"embed-text", bad, b"--model", text], tmp_path)
    assert r.returncode == 4 and r.stderr.decode().count("\n") == 2  # skipped, then "no text could be embedded"


def test_cli_non_utf8_image_names_are_printed_not_crashed_on(tmp_path, capsys):
    from PIL import Image as PILImage

    name = os.fsdecode(b"caf\xe9.png")
    PILImage.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / name)
    assert cli(["classify", str(tmp_path / name)]) == 0
    assert "caf\\xe9.png" in capsys.readouterr().out
    assert cli(["classify", str(tmp_path / name), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["image"].endswith("caf\\xe9.png")


# -- a tokenizer that does not fit its model ---------------------------------------------------


@pytest.mark.parametrize("rows", [49407, 40000, 100], ids=["one row short", "smaller table", "tiny table"])
def test_a_token_table_smaller_than_the_vocabulary_is_a_metadata_error_at_load(tmp_path, rows):
    path = text_model(tmp_path / "t.onnx", rows=rows)
    with pytest.raises(MetadataError, match="refuses token id 49407") as info:
        TextEmbedder.create_from_model_path(path)
    assert "49408" in str(info.value)


@pytest.mark.parametrize("change,max_id", [({"added_id": 60000}, 49408), ({"vocab_id": ("cat</w>", 49408)}, 49408),
                                           ({"vocab_id": ("cat</w>", 60000)}, 60000)],
                         ids=["added special token", "vocabulary id one past", "vocabulary id far past"])
def test_a_tokenizer_with_ids_past_the_table_is_a_metadata_error_at_load(tmp_path, change, max_id):
    path = text_model(tmp_path / "t.onnx", tokenizer_json=tokenizer_json(**change))
    with pytest.raises(MetadataError, match=f"refuses token id {max_id}"):
        TextEmbedder.create_from_model_path(path)


@pytest.mark.parametrize("new_id", [2**31, 2**32 - 1])
def test_ids_beyond_int32_are_refused_when_the_tokenizer_is_built(tmp_path, new_id):
    tok = tokenizer_json(vocab_id=("cat</w>", new_id))
    with pytest.raises(MetadataError, match=f"ids go up to {new_id}: beyond the int32 token ids"):
        ClipTokenizer(tok)
    with pytest.raises(MetadataError):
        TextEmbedder.create_from_model_path(text_model(tmp_path / "t.onnx", tokenizer_json=tok))


def _entry_with_known(tok_bytes: bytes = None) -> dict:
    tok = ClipTokenizer(tok_bytes or TOKENIZER_JSON.read_bytes())
    return dict(TOKENIZER_ENTRY, known_encodings=known_encodings(tok))


@pytest.mark.parametrize("change", [{"merges": []}, {"lowercase": False}, {"merges": "reversed"}],
                         ids=["empty merges", "no lowercasing", "merges reordered"])
def test_a_tokenizer_that_encodes_the_recorded_texts_differently_is_a_metadata_error(tmp_path, change):
    if change.get("merges") == "reversed":
        merges = json.loads(TOKENIZER_JSON.read_text())["model"]["merges"]
        change = {"merges": merges[::-1]}
    path = text_model(tmp_path / "t.onnx", tokenizer_json=tokenizer_json(**change), entry=_entry_with_known())
    with pytest.raises(MetadataError, match="does not encode .* as the model was converted with"):
        TextEmbedder.create_from_model_path(path)
    # The same tokenizer with its own recorded encodings loads: the check compares, it does not guess.
    path = text_model(tmp_path / "ok.onnx", entry=_entry_with_known())
    with TextEmbedder.create_from_model_path(path) as t:
        assert t.tokenizer.encode("a photo of a cat").length == 7


@pytest.mark.parametrize("value", [["a", [1, 2]], [["a", "1, 2"]], [["a", [1, True]]], "text"])
def test_a_malformed_known_encodings_entry_is_a_metadata_error(tmp_path, value):
    path = text_model(tmp_path / "t.onnx", entry=dict(TOKENIZER_ENTRY, known_encodings=value))
    with pytest.raises(MetadataError, match="known_encodings"):
        TextEmbedder.create_from_model_path(path)


@pytest.mark.slow
def test_the_converters_record_known_encodings_and_a_swapped_tokenizer_is_caught(clip_pair, tmp_path, capsys):
    data = clip_pair["text"].read_bytes()
    md = read_tflite_metadata(data)
    entry = md.custom_json(TOKENIZER_KEY)
    assert [t for t, _ in entry["known_encodings"]] == list(KNOWN_ENCODING_TEXTS)
    assert entry["known_encodings"][0][1] == [49406, 320, 1125, 539, 320, 2368, 49407]
    # The README's tower with another tokenizer.json packed in (metadata rewritten with our writer: the
    # checksum is recomputed, so only the tokenizer checks stand between it and wrong vectors).
    for name, tok in (("empty merges", tokenizer_json(merges=[])),
                      ("ids past the table", tokenizer_json(vocab_id=("cat</w>", 49408)))):
        files = tuple((n, tok if n == "tokenizer.json" else b) for n, b in md.files)
        swapped = tmp_path / "swapped.tflite"
        swapped.write_bytes(populate_tflite_metadata(data, dataclasses.replace(md, files=files)))
        with pytest.raises(MetadataError):
            TextEmbedder.create_from_model_path(swapped)
        assert cli(["embed-text", "a cat", "--model", str(swapped)]) == 3, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "model error" in err, (name, err)
