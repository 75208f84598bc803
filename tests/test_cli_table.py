"""Every command through docs/cli.md's table: its options, its output for one input, several and an
unreadable one, and the extras it checks before it starts working.

The table is parsed from the page, so a command that behaves otherwise than the
page says, or a command the page does not list, fails here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_embedder.cli import build_parser, main

from .conftest import DATA, ROOT

pytestmark = pytest.mark.slow

CHELSEA, COFFEE = str(DATA / "chelsea.png"), str(DATA / "coffee.png")
IMAGE_OPTIONS = ("--roi", "--rotation", "--max-pixels")


def _split_top(text: str) -> list[str]:
    """``a (x, y), b (z)`` -> [``a (x, y)``, ``b (z)``]: commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur.strip()] if p]


def _table() -> dict[str, dict[str, str]]:
    text = (ROOT / "docs" / "cli.md").read_text()
    block = text[text.index("| command | inputs |"):]
    rows = []
    for line in block.splitlines():
        if not line.startswith("|"):
            break  # the end of the table
        rows.append(line)
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    out = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        row = dict(zip(head, cells))
        out[row["command"].strip("`")] = row
    return out


TABLE = _table()


def _formats(row: dict[str, str]) -> list[str]:
    col = row["`--format` (shape)"]
    if col.startswith(("by ", "`-o`")):
        return []
    return [p.split(" (")[0].strip("`") for p in _split_top(col)]


def _codes(row: dict[str, str]) -> set[int]:
    return {int(c) for c in row["exit codes"].split(",")}


def _subparsers() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")  # noqa: SLF001
    return dict(action.choices)


def test_the_table_lists_every_command_and_only_them():
    assert set(TABLE) == set(_subparsers())


@pytest.mark.parametrize("command", sorted(TABLE))
def test_options_are_the_tables(command):
    """Image options where the table says yes (and only there); --format with the table's choices."""
    p = _subparsers()[command]
    options = {s for a in p._actions for s in a.option_strings}  # noqa: SLF001
    row = TABLE[command]
    takes_images = row["image options"] == "yes"
    for opt in IMAGE_OPTIONS:
        assert (opt in options) is takes_images, f"{command} {opt}: table says image options {row['image options']}"
    formats = _formats(row)
    fmt = next((a for a in p._actions if "--format" in a.option_strings), None)  # noqa: SLF001
    if fmt is not None:
        assert list(fmt.choices) == formats and fmt.default in (formats[0], None), (command, formats)
        assert "-o" in options and "--out" in options
    else:  # one fixed output (or a file named by -o)
        assert len(formats) <= 1, f"{command}: the table gives formats {formats} but there is no --format"
    # --output is the old spelling of --format; of -o in convert and bench, whose --output was their file
    output_of = "-o" if command in ("convert", "bench") else "--format"
    for alias, canonical in (("--output", output_of), ("-k", "--top-k")):
        if alias in options and canonical in options:
            a = next(x for x in p._actions if alias in x.option_strings)  # noqa: SLF001
            b = next(x for x in p._actions if canonical in x.option_strings)  # noqa: SLF001
            assert a.dest == b.dest, f"{command}: {alias} must be an alias of {canonical}"
    if "--head" in options:
        head = next(x for x in p._actions if "--head" in x.option_strings)  # noqa: SLF001
        assert head.metavar == "INDEX|NAME"


# -- one input, several, an unreadable one --------------------------------------------------------


def _per_input_commands(clip_pair) -> dict[str, tuple[list[str], list[str], str]]:
    """command -> (argv before the inputs, good inputs, an unusable input)."""
    pair = ["--image-model", str(clip_pair["image"]), "--text-model", str(clip_pair["text"])]
    return {
        "embed": (["embed", "--format", "json"], [CHELSEA, COFFEE], "BAD"),
        "classify": (["classify", "--format", "json", "--top-k", "2"], [CHELSEA, COFFEE], "BAD"),
        "zero-shot": (["zero-shot", *pair, "--labels", "cat,dog"], [CHELSEA, COFFEE], "BAD"),
        "embed-text": (["embed-text", "--model", str(clip_pair["text"])], ["a cat", "a dog"], "BAD"),
    }


@pytest.fixture(scope="module")
def unreadable(tmp_path_factory) -> str:
    bad = tmp_path_factory.mktemp("bad") / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a JPEG")
    return str(bad)


@pytest.mark.parametrize("command", ["embed", "classify", "zero-shot", "embed-text"])
def test_one_several_and_unreadable_inputs(command, clip_pair, unreadable, capsys):
    argv, good, _ = _per_input_commands(clip_pair)[command]
    kind = "text" if command == "embed-text" else "image"
    row = TABLE[command]
    assert row["skipped inputs"].startswith("error record")
    for inputs in (good[:1], good):
        assert main([*argv, *inputs]) == 0
        records = json.loads(capsys.readouterr().out)
        assert isinstance(records, list) and [r[kind] for r in records] == inputs  # one shape, input order
        assert all("error" not in r for r in records)
    if kind == "text":
        bad = "\ud800 lone surrogate"  # what a non-UTF-8 command-line argument decodes to
        code = main([*argv, good[0], bad, good[1]])
        records = json.loads(capsys.readouterr().out)
        assert len(records) == 3 and records[0]["text"] == good[0] and records[2]["text"] == good[1]
        if "error" in records[1]:  # refused: listed, the others embedded
            assert code == 1 and records[1]["error"]["type"] == "TextInputError"
        else:  # or replaced as errors="replace" would, and embedded
            assert code == 0 and "embeddings" in records[1]
        return
    assert main([*argv, good[0], unreadable, good[1]]) == 1
    out, err = capsys.readouterr()
    records = json.loads(out)
    assert [r[kind] for r in records] == [good[0], unreadable, good[1]]
    assert records[1] == {kind: unreadable, "error": {"type": "ImageDecodeError", "reason": "not a recognised image format"}}
    assert f"skipped {unreadable}" in err
    assert main([*argv, unreadable]) == 4 and 4 in _codes(row)
    capsys.readouterr()


def test_classify_text_output_lists_the_skipped_image(unreadable, capsys):
    assert main(["classify", CHELSEA, unreadable, "--top-k", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == [unreadable, "  skipped: ImageDecodeError: not a recognised image format"]


@pytest.mark.parametrize("command", ["embed", "embed-text"])
@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_array_outputs_say_what_their_rows_are(command, fmt, clip_pair, unreadable, tmp_path, capsys):
    argv, good, _ = _per_input_commands(clip_pair)[command]
    key = "texts" if command == "embed-text" else "paths"
    assert f"`{key}`" in TABLE[command]["`--format` (shape)"]
    out = str(tmp_path / f"x.{fmt}")
    bad = [] if command == "embed-text" else [unreadable]
    code = main([a for a in argv if a not in ("--format", "json")] + ["--format", fmt, "-o", out, good[0], *bad, good[1]])
    assert code == (1 if bad else 0)
    capsys.readouterr()
    if fmt == "npy":
        side = json.loads(Path(out + ".json").read_text())
        rows, skipped = side[key], [s[key[:-1]] for s in side["skipped"]]
        assert side["rows"] == key and np.load(out).shape[0] == len(rows)
    else:
        with np.load(out) as z:
            rows, skipped = list(z[key]), list(z[f"skipped_{key}"])
            assert z["embeddings"].shape[0] == len(rows) and len(z["skipped_reasons"]) == len(skipped)
    assert rows == good and skipped == bad


@pytest.mark.parametrize("command", ["embed-dir", "index"])
def test_folder_commands_list_what_they_skipped(command, unreadable, tmp_path, capsys):
    import shutil

    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(CHELSEA, folder / "chelsea.png")
    shutil.copy(unreadable, folder / "broken.jpg")
    out = tmp_path / "out.npz"
    assert main([command, str(folder), "-o", str(out), "--no-progress"]) == 1
    capsys.readouterr()
    assert "`OUT.skipped.tsv` (`path`, `reason`)" in TABLE[command]["skipped inputs"]
    header, *rows = (tmp_path / "out.npz.skipped.tsv").read_text().splitlines()
    assert header == "path\treason" and rows == [f"{folder / 'broken.jpg'}\tnot a recognised image format"]
    with np.load(out) as z:
        assert [Path(p).name for p in z["paths"]] == ["chelsea.png"]


# -- the image options reach the images -----------------------------------------------------------


def test_every_image_command_applies_the_image_options(clip_pair, tmp_path, capsys):
    """--max-pixels below the photos' size makes every image command refuse them (nothing is decoded)."""
    import shutil

    small = ["--max-pixels", "1000", "--roi", "0.1,0.1,0.9,0.9", "--rotation", "90"]
    pair = ["--image-model", str(clip_pair["image"]), "--text-model", str(clip_pair["text"])]
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(CHELSEA, folder / "chelsea.png")
    assert main(["index", str(folder), "-o", str(tmp_path / "i.npz"), "--no-progress"]) == 0
    runs = {
        "embed": ["embed", CHELSEA],
        "classify": ["classify", CHELSEA],
        "zero-shot": ["zero-shot", CHELSEA, *pair, "--labels", "cat,dog"],
        "similarity": ["similarity", CHELSEA, COFFEE],
        "search": ["search", str(tmp_path / "i.npz"), "--image", CHELSEA],
        "embed-dir": ["embed-dir", str(folder), "-o", str(tmp_path / "e.npz"), "--no-progress"],
        "index": ["index", str(folder), "-o", str(tmp_path / "j.npz"), "--no-progress"],
    }
    assert set(runs) == {c for c, r in TABLE.items() if r["image options"] == "yes"}
    for command, argv in runs.items():
        code = main([*argv, *small])
        err = capsys.readouterr().err
        if command in ("embed-dir", "index"):
            assert code == 1, (command, code, err)
            err = Path(argv[3] + ".skipped.tsv").read_text()
        else:
            assert code == 4, (command, code, err)
        assert "over the pixel budget" in err and "--max-pixels" in err, (command, err)  # names the flag
    # and without the budget the ROI and rotation are applied: equal to the API's result
    from edge_embedder import ImageEmbedder, ImageProcessingOptions, RectF
    from edge_embedder.resources import default_model_path

    assert main(["embed", CHELSEA, "--roi", "0.1,0.1,0.9,0.9", "--rotation", "90"]) == 0
    got = json.loads(capsys.readouterr().out)[0]["embeddings"][0]["embedding"]
    with ImageEmbedder.create_from_model_path(default_model_path()) as e:
        want = e.embed(CHELSEA, ImageProcessingOptions(RectF(0.1, 0.1, 0.9, 0.9), 90)).embeddings[0].embedding
    np.testing.assert_allclose(got, want, rtol=1e-6)


# -- extras are checked before the work starts ----------------------------------------------------


def _blocked(monkeypatch, *modules: str) -> None:
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)  # importing it raises ImportError; find_spec finds nothing


def _one_line_exit_5(capsys, extra: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"edge-embedder[{extra}]" in err and "Traceback" not in err, err


def test_missing_extras_fail_before_any_work(clip_pair, monkeypatch, tmp_path, capsys):
    import shutil

    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(CHELSEA, folder / "chelsea.png")
    cases = [
        ("embed-dir", "parquet", ("pyarrow",), ["embed-dir", str(folder), "-o", str(tmp_path / "o.parquet")]),
        ("index", "parquet", ("pyarrow",), ["index", str(folder), "-o", str(tmp_path / "o2.parquet")]),
        ("index", "search", ("usearch",), ["index", str(folder), "-o", str(tmp_path / "o.npz"), "--approximate", "always"]),
        ("zero-shot", "text", ("tokenizers",), ["zero-shot", CHELSEA, "--image-model", str(clip_pair["image"]),
                                                "--text-model", str(clip_pair["text"]), "--labels", "cat"]),
        ("embed-text", "text", ("tokenizers",), ["embed-text", "a", "--model", str(clip_pair["text"])]),
        ("similarity", "text", ("tokenizers",), ["similarity", "--text", "a", "--text", "b",
                                                 "--text-model", str(clip_pair["text"])]),
        ("bench", "bench", ("matplotlib",), ["bench", "efficientnet-lite0", "--plot", str(tmp_path / "p.png"),
                                             "-o", str(tmp_path / "r.json")]),
        ("bench", "mediapipe", ("mediapipe",), ["bench", "efficientnet-lite0", "--compare", "mediapipe",
                                                "-o", str(tmp_path / "r.json")]),
        ("convert", "convert", ("torch",), ["convert", "--arch", "vit", "--model", "x", "-o", str(tmp_path / "c.tflite")]),
    ]
    for command, extra, modules, argv in cases:
        assert f"`{extra}`" in TABLE[command]["extras checked first"], (command, extra)
        with monkeypatch.context() as m:
            _blocked(m, *modules)
            assert main(argv) == 5, (command, extra)
        _one_line_exit_5(capsys, extra)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["pics"], (command, "left output behind")


def test_an_interrupted_run_is_protected_like_a_finished_one(tmp_path, capsys):
    import shutil

    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(CHELSEA, folder / "chelsea.png")
    out = tmp_path / "o.npz"
    for command in ("embed-dir", "index"):
        (tmp_path / "o.npz.partial.npz").write_bytes(b"a checkpoint")  # what Ctrl-C leaves
        assert main([command, str(folder), "-o", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "checkpoint of an interrupted run" in err and "--resume" in err and "--overwrite" in err
        assert (tmp_path / "o.npz.partial.npz").read_bytes() == b"a checkpoint" and not out.exists()
        assert main([command, str(folder), "-o", str(out), "--no-progress", "--overwrite"]) == 0
        assert out.exists() and not (tmp_path / "o.npz.partial.npz").exists()
        assert main([command, str(folder), "-o", str(out), "--no-progress"]) == 2  # a finished one too
        assert "--resume" in capsys.readouterr().err
        out.unlink()


def test_index_resume_of_a_raw_embed_dir_output_names_what_to_do(tmp_path, capsys):
    import shutil

    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(CHELSEA, folder / "chelsea.png")
    out = tmp_path / "o.npz"
    assert main(["embed-dir", str(folder), "-o", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["index", str(folder), "-o", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "rerun without --l2-normalize" not in err and "raw (not normalised)" in err and "--overwrite" in err


def test_classify_refuses_a_model_without_labels_unless_asked(capsys):
    assert main(["classify", CHELSEA, "--model", "efficientnet-lite0"]) == 3
    err = capsys.readouterr().err
    assert "no label file" in err and "1280" in err and "--allow-unlabelled" in err
    assert main(["classify", CHELSEA, "--model", "efficientnet-lite0", "--allow-unlabelled", "--top-k", "1"]) == 0
    assert "class " in capsys.readouterr().out
