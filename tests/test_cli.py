"""The edge-embedder CLI: subcommands, outputs and exit codes (no tracebacks)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_embedder.cli import main

from .conftest import CONTRACT, DATA, FIXTURES, FP32_MODEL, ROOT

CHELSEA, COFFEE = str(DATA / "chelsea.png"), str(DATA / "coffee.png")


def test_demo_prints_a_similarity_matrix(capsys):
    assert main(["demo", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "chelsea_mirror" in out and "cosine similarity" in out
    row = next(line for line in out.splitlines() if line.startswith("chelsea "))
    values = [float(v) for v in row.split()[1:]]
    ref = json.loads((FIXTURES / "shipped_reference.json").read_text())["embedders"]["fp32"]  # MediaPipe's values
    assert values[0] == pytest.approx(1.0) and values[1] == pytest.approx(ref["chelsea_vs_mirror"], abs=1e-3)
    assert values[2] == pytest.approx(ref["chelsea_vs_coffee"], abs=1e-3)


def test_embed_json_matches_the_api(capsys):
    from edge_embedder import ImageEmbedder

    assert main(["embed", CHELSEA, "--model", str(FP32_MODEL), "--roi", "0.1,0.1,0.9,0.9", "--rotation", "90"]) == 0
    got = json.loads(capsys.readouterr().out)
    from edge_embedder import ImageProcessingOptions, RectF

    with ImageEmbedder.create_from_model_path(FP32_MODEL) as e:
        ref = e.embed(CHELSEA, ImageProcessingOptions(RectF(0.1, 0.1, 0.9, 0.9), 90)).embeddings[0].embedding
    assert isinstance(got, list) and len(got) == 1 and got[0]["image"] == CHELSEA  # a list, even for one image
    assert got[0]["embeddings"][0]["head_name"] == "embedding"
    np.testing.assert_allclose(got[0]["embeddings"][0]["embedding"], ref, rtol=1e-6)


def test_embed_npy_with_a_bad_image_is_partial(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "vecs.npy"
    code = main(["embed", CHELSEA, str(bad), COFFEE, "--l2-normalize", "--format", "npy", "-o", str(out)])
    assert code == 1  # finished, but something was skipped
    assert "bad.jpg" in capsys.readouterr().err
    arr = np.load(out)
    assert arr.shape == (2, 1280)
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    side = json.loads((tmp_path / "vecs.npy.json").read_text())  # the rows' images, and what was skipped
    assert side["rows"] == "paths" and side["paths"] == [CHELSEA, COFFEE] and side["head_name"] == "embedding"
    assert [s["path"] for s in side["skipped"]] == [str(bad)] and "not a recognised image format" in side["skipped"][0]["reason"]
    assert not list(tmp_path.glob("*.tmp"))


def test_embed_output_has_one_shape_whatever_the_count(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["embed", CHELSEA, str(bad)]) == 1
    records = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in records] == [CHELSEA, str(bad)]  # input order, the skipped one recorded
    assert "embeddings" in records[0] and records[1]["error"]["type"] == "ImageDecodeError"
    assert records[1]["error"]["reason"] == "not a recognised image format"  # the reason does not repeat the path
    one = tmp_path / "one.npy"
    assert main(["embed", CHELSEA, "--output", "npy", "-o", str(one)]) == 0
    assert np.load(one).shape == (1, 1280)  # 2-D for one image too
    npz = tmp_path / "all.npz"
    assert main(["embed", CHELSEA, str(bad), COFFEE, "--format", "npz", "-o", str(npz)]) == 1
    with np.load(npz) as z:  # embed-dir's vocabulary: paths of the rows
        assert z["embeddings"].shape == (2, 1280) and list(z["paths"]) == [CHELSEA, COFFEE]
        assert list(z["skipped_paths"]) == [str(bad)] and str(z["head_name"]) == "embedding"
        assert int(z["head_index"]) == 0 and list(z["skipped_reasons"]) == ["not a recognised image format"]


@pytest.mark.parametrize("head,ok", [("0", True), ("embedding", True), ("-1", False), ("-2", False), ("1", False),
                                     ("nope", False)])
def test_heads_are_validated_by_index_and_name(head, ok, tmp_path, capsys):
    out = tmp_path / "v.npy"
    code = main(["embed", CHELSEA, "--head", head, "--output", "npy", "-o", str(out)])
    err = capsys.readouterr().err
    if ok:
        assert code == 0 and np.load(out).shape == (1, 1280)
    else:
        assert code == 2 and err.count("\n") == 1 and "0 (embedding)" in err and "Traceback" not in err
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "c.png").write_bytes((DATA / "chelsea.png").read_bytes())
    code = main(["embed-dir", str(pics), "-o", str(tmp_path / "d.npz"), "--head", head, "--no-progress"])
    assert code == (0 if ok else 2)


def test_quantize_without_l2_warns(capsys):
    assert main(["embed", CHELSEA, "--quantize"]) == 0
    err = capsys.readouterr().err
    assert "without --l2-normalize" in err and err.count("\n") == 1
    assert main(["embed", CHELSEA, "--quantize", "--l2-normalize"]) == 0
    assert "saturate" not in capsys.readouterr().err


def test_output_folder_must_exist(tmp_path, capsys):
    missing = tmp_path / "no_such_dir"
    assert main(["embed-dir", str(DATA), "-o", str(missing / "x.npz"), "--no-progress"]) == 2
    assert main(["embed", CHELSEA, "--output", "npy", "-o", str(missing / "x.npy")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_embed_quantized_json(capsys):
    assert main(["embed", CHELSEA, "--quantize", "--l2-normalize"]) == 0
    vals = json.loads(capsys.readouterr().out)[0]["embeddings"][0]["embedding"]
    assert all(isinstance(v, int) and -128 <= v <= 127 for v in vals)


def test_similarity(capsys):
    """The printed cosine is MediaPipe's on the same file (tests/fixtures/shipped_reference.json)."""
    ref = json.loads((FIXTURES / "shipped_reference.json").read_text())["embedders"]["fp32"]["chelsea_vs_coffee"]
    assert main(["similarity", CHELSEA, COFFEE]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize(
    "model,code,verdict",
    [("valid_two_heads", 0, True), ("batch2", 1, False), ("no_metadata_float", 1, False)],
)
def test_inspect_verdict_and_exit_code(model, code, verdict, capsys):
    assert main(["inspect", str(CONTRACT / f"{model}.tflite")]) == code
    report = json.loads(capsys.readouterr().out)
    assert report["contract"]["ok"] is verdict
    if verdict:
        assert [h["head_name"] for h in report["contract"]["heads"]] == ["global", "local"]
    else:
        assert "expected" in report["contract"]["error"]


def test_inspect_garbage_file(tmp_path, capsys):
    # Not a model at all: a model error (3), like an empty or missing file; 1 is for a model that loads
    # but breaks the contract.
    p = tmp_path / "x.tflite"
    p.write_bytes(b"garbage" * 20)
    assert main(["inspect", str(p)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognised model file" in err
    (tmp_path / "empty.tflite").write_bytes(b"")
    assert main(["inspect", str(tmp_path / "empty.tflite")]) == 3
    assert main(["inspect", str(tmp_path / "missing.tflite")]) == 3
    assert main(["inspect", str(CONTRACT / "batch2.tflite")]) == 1


def test_errors_are_one_line_with_meaningful_exit_codes(tmp_path, capsys):
    assert main(["embed", CHELSEA, "--model", str(CONTRACT / "batch2.tflite")]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "batch size 1, got 2" in err
    assert main(["embed", str(tmp_path / "missing.jpg")]) == 4
    assert main(["embed", CHELSEA, "--output", "npy"]) == 2
    assert main(["embed", CHELSEA, "--model", str(tmp_path / "none.tflite")]) == 3


@pytest.mark.parametrize("argv", [["embed", CHELSEA, "--roi", "0.5,0.1,0.2,0.9"], ["embed", CHELSEA, "--rotation", "45"],
                                  ["embed", CHELSEA, "--threads", "0"], ["nonsense"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_runs_as_a_module_without_traceback():
    for argv in (["--help"], ["embed", "--help"], ["inspect", "--help"], ["classify", "--help"]):
        r = subprocess.run([sys.executable, "-m", "edge_embedder", *argv], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
        assert r.returncode == 0 and "usage:" in r.stdout, r.stderr


# --------------------------------------------------------------------------- #
# classify
# --------------------------------------------------------------------------- #


def test_classify_prints_egyptian_cat_and_espresso_first(capsys):
    assert main(["classify", CHELSEA, COFFEE]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == CHELSEA and out[1].split()[1:3] == ["Egyptian", "cat"] and "(index 285)" in out[1]
    assert out[6] == COFFEE and out[7].split()[1] == "espresso" and "(index 967)" in out[7]
    assert len(out) == 12  # two images, top 5 each


def test_classify_json_matches_the_api(capsys):
    from edge_embedder import ImageClassifier, ImageClassifierOptions, ImageProcessingOptions, RectF
    from edge_embedder.core.base_options import BaseOptions
    from edge_embedder.resources import default_classifier_path

    assert main(["classify", COFFEE, "--top-k", "3", "--roi", "0.1,0.1,0.9,0.9", "--rotation", "90",
                 "--output", "json"]) == 0
    (got,) = json.loads(capsys.readouterr().out)  # a list, for one image too
    opts = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=default_classifier_path()), max_results=3)
    with ImageClassifier.create_from_options(opts) as c:
        want = c.classify(COFFEE, ImageProcessingOptions(RectF(0.1, 0.1, 0.9, 0.9), 90)).classifications[0]
    head = got["classifications"][0]
    assert head["head_name"] == "probability" and got["image"] == COFFEE
    assert [k["index"] for k in head["categories"]] == [k.index for k in want.categories]
    np.testing.assert_allclose([k["score"] for k in head["categories"]], [k.score for k in want.categories], rtol=1e-6)
    assert head["categories"][0]["category_name"] == head["categories"][0]["display_name"] == "espresso"


def test_classify_threshold_int8_model_and_partial_exit(tmp_path, capsys):
    from edge_embedder.resources import default_classifier_path

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "labels.json"
    code = main(["classify", CHELSEA, str(bad), "--threshold", "0.05", "--model", str(default_classifier_path("int8")),
                 "--output", "json", "-o", str(out)])
    assert code == 1 and "bad.jpg" in capsys.readouterr().err
    result, skipped = json.loads(out.read_text())  # input order; the unreadable image is listed with its reason
    assert [k["index"] for k in result["classifications"][0]["categories"]] == [285, 282, 281]
    assert skipped == {"image": str(bad), "error": {"type": "ImageDecodeError", "reason": "not a recognised image format"}}
    assert main(["classify", str(bad)]) == 4
    assert main(["classify", CHELSEA, "--model", str(CONTRACT / "batch2.tflite")]) == 3
    with pytest.raises(SystemExit) as exc:
        main(["classify", CHELSEA, "--top-k", "0"])
    assert exc.value.code == 2


def test_inspect_classifier_lists_labels(capsys):
    from edge_embedder.resources import default_classifier_path

    assert main(["inspect", str(default_classifier_path("int8"))]) == 0
    head = json.loads(capsys.readouterr().out)["contract"]["heads"][0]
    assert head["labels"] == 1000 and head["first_labels"][:2] == ["tench", "goldfish"]


# -- shipped models by name, sample photos -------------------------------------------------------


def _readme_sha256() -> dict[str, str]:
    """The sha256 column of models/README.md (recorded when the models were built, not by this code)."""
    import re

    rows = re.findall(r"^\| `(\S+\.tflite)` \| [^|]+ \| `([0-9a-f]{64})` \|$", (ROOT / "models" / "README.md").read_text(),
                      flags=re.M)
    return dict(rows)


def test_models_lists_every_shipped_model_with_its_recorded_sha256(capsys):
    from pathlib import Path

    assert main(["models", "--output", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    recorded = _readme_sha256()
    assert len(recorded) == 4
    assert {Path(r["path"]).name: r["sha256"] for r in rows} == recorded
    assert [r["name"] for r in rows] == ["efficientnet-lite0", "efficientnet-lite0-int8", "efficientnet-lite0-classifier",
                                         "efficientnet-lite0-classifier-int8"]
    for r in rows:
        assert Path(r["path"]).stat().st_size == r["size_bytes"]
        assert r["task"] == ("image-classification" if "classifier" in r["name"] else "image-embedding")
    assert main(["models"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 4 and all(r["sha256"] in line and r["name"] in line for r, line in zip(rows, text))


def test_every_model_option_takes_a_shipped_name(tmp_path, capsys):
    """A name gives the same result as the file; an existing file of that name wins; a typo is a usage error."""
    from edge_embedder.resources import SHIPPED_MODELS

    chelsea = str(DATA / "chelsea.png")
    assert main(["embed", chelsea, "--model", "efficientnet-lite0-int8"]) == 0
    by_name = json.loads(capsys.readouterr().out)[0]["embeddings"][0]["embedding"]
    assert main(["embed", chelsea, "--model", str(SHIPPED_MODELS["efficientnet-lite0-int8"].path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["embeddings"][0]["embedding"] == by_name
    assert main(["classify", chelsea, "--model", "efficientnet-lite0-classifier-int8", "--top-k", "1"]) == 0
    assert "Egyptian cat" in capsys.readouterr().out
    assert main(["inspect", "efficientnet-lite0"]) == 0
    assert json.loads(capsys.readouterr().out)["file"] == str(SHIPPED_MODELS["efficientnet-lite0"].path)
    # a file in the working folder with a shipped name is that file (here: not a model -> exit 3)
    import os

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        (tmp_path / "efficientnet-lite0").write_bytes(b"not a model")
        assert main(["embed", chelsea, "--model", "efficientnet-lite0"]) == 3
        capsys.readouterr()
    finally:
        os.chdir(old)
    with pytest.raises(SystemExit) as exc:
        main(["embed", chelsea, "--model", "efficientnet-lite0-in8"])
    assert exc.value.code == 2
    assert "did you mean efficientnet-lite0-int8?" in capsys.readouterr().err


def test_samples_lists_and_copies_the_bundled_photos(tmp_path, capsys):
    assert main(["samples"]) == 0
    listed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert sorted(listed) == ["astronaut", "chelsea", "coffee", "rocket"]
    assert main(["samples", "--copy", str(tmp_path / "photos")]) == 0
    copied = capsys.readouterr().out.split()
    assert sorted(p.split("/")[-1] for p in copied) == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    for name, path in listed.items():
        assert (tmp_path / "photos" / f"{name}.png").read_bytes() == open(path, "rb").read()
    assert main(["samples", "--copy", str(tmp_path / "no" / "such")]) == 2
    assert "does not exist" in capsys.readouterr().err
