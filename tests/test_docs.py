"""README.md and docs/ are a contract: every code block runs, as a user would run it, and prints what it shows.

Each page (README.md, docs/*.md) runs in a temporary folder of its own, outside
the checkout, against the *installed* package (the wheel in the ``venv``
fixture, with no path back into the checkout), block after block in page order:

* ` ```python ` blocks run with that environment's ``python``;
* ` ```bash ` blocks run with ``bash -e -o pipefail``, the environment's
  ``bin`` first on ``PATH`` (``edge-embedder``, ``python``). Lines that start
  with ``pip install`` are not run (the environment is already installed;
  ``.ci/run`` runs the README's install lines verbatim);
* an ` ```output ` block right after a code block is that block's expected
  stdout, compared line by line: ``...`` inside a line matches any text, a
  line that is only ``...`` matches any number of lines;
* ` ```text ` blocks are not code (diagrams, layouts) and run nowhere.

Two HTML comments steer a page or a block:

* ``<!-- docs-test: needs tiny-clip -->`` anywhere in a page: its folder starts
  with the tiny CLIP checkpoint and its two towers, built once per test session
  by the very commands docs/text.md shows (``conftest.clip_pair``);
* ``<!-- docs-test: skip REASON -->`` right before a block: not run here.
  Allowed only for the reasons in :data:`SKIP_REASONS` (each is run elsewhere,
  which a test below checks).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: The only reasons a block may be left to something else than this module.
SKIP_REASONS = {
    "quick-start": "the README's two commands: .ci/run runs them verbatim in a fresh venv",
}
CODE = ("python", "bash")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*docs-test:\s*(\w[\w-]*)\s*(.*?)\s*-->")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    output: Optional[str] = None
    skip: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.lang})"


def parse(page: Path) -> tuple[list[Block], set[str]]:
    """The code blocks of a page (with their expected output) and the page's ``needs``."""
    text = page.read_text(encoding="utf-8")
    needs = {m.group(2) for m in MARKER.finditer(text) if m.group(1) == "needs"}
    blocks: list[Block] = []
    pos = 0
    for m in FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        between = text[pos:m.start()]
        pos = m.end()
        if lang == "output":
            if not blocks or between.strip() or blocks[-1].output is not None:
                raise AssertionError(f"{page.relative_to(ROOT)}:{line}: an output block must follow a code block directly")
            blocks[-1].output = body
            continue
        if lang not in CODE and lang != "text":
            raise AssertionError(f"{page.relative_to(ROOT)}:{line}: block language {lang!r}: use python, bash, output "
                                 "or text (a block that is not run is not code: cite commands inline)")
        skip = None
        markers = [mm for mm in MARKER.finditer(between) if mm.group(1) == "skip"]
        if markers:
            skip = markers[-1].group(2)
            if skip not in SKIP_REASONS:
                raise AssertionError(f"{page.relative_to(ROOT)}:{line}: skip reason {skip!r} is not one of {sorted(SKIP_REASONS)}")
        if lang in CODE:
            blocks.append(Block(page, line, lang, body, skip=skip))
    return blocks, needs


def _line_matches(pattern: str, line: str) -> bool:
    parts = [re.escape(p) for p in pattern.split("...")]
    return re.fullmatch(".*?".join(parts), line, flags=re.S) is not None


def output_matches(expected: str, actual: str) -> bool:
    """``actual`` against ``expected`` line by line (trailing whitespace ignored), with the ``...`` wildcards."""
    exp = [line.rstrip() for line in expected.rstrip("\n").split("\n")]
    act = [line.rstrip() for line in actual.rstrip("\n").split("\n")] if actual.strip() else []

    def match(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        if exp[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(act) + 1))
        return j < len(act) and _line_matches(exp[i], act[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _runnable_bash(code: str) -> str:
    kept = []
    for line in code.split("\n"):
        if line.lstrip().startswith("pip install"):
            continue
        kept.append(line)
    return "\n".join(kept)


PARSED = {page: parse(page) for page in PAGES}


def test_every_page_has_runnable_blocks_and_only_known_languages():
    assert (ROOT / "docs").is_dir()
    for page, (blocks, _) in PARSED.items():
        assert blocks, f"{page.relative_to(ROOT)} has no code block"


def test_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 400, f"README.md has {lines} lines: the reference belongs in docs/"
    readme = (ROOT / "README.md").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


def test_quick_start_is_what_ci_runs_verbatim():
    """The skipped quick-start block is exactly what .ci/run runs, in a fresh venv, in that order."""
    blocks, _ = PARSED[ROOT / "README.md"]
    quick = [b for b in blocks if b.skip == "quick-start"]
    assert len(quick) == 1, "README must have one quick-start block"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"python3? -m venv", ci), ".ci/run must make a fresh virtual environment"
    commands = [c for c in quick[0].code.strip().split("\n") if c.strip()]
    assert len(commands) == 2, commands
    at = [ci.find(f"\n{c}\n") for c in commands]
    assert all(i >= 0 for i in at) and at == sorted(at), f".ci/run does not run the quick start verbatim: {commands}"
    assert ci.find("-m venv") < at[0], "the quick start must run inside the fresh venv"


def test_skipped_blocks_are_only_the_quick_start():
    skipped = [str(b) for blocks, _ in PARSED.values() for b in blocks if b.skip and b.skip != "quick-start"]
    assert not skipped


def test_text_page_builds_the_tiny_clip_pair_as_the_tests_do():
    """docs/text.md's tiny-pair step is the one conftest's ``clip_pair`` runs (tests/text_models.py)."""
    from .text_models import README_COMMANDS

    bash = "\n".join(b.code for b in PARSED[ROOT / "docs" / "text.md"][0] if b.lang == "bash")
    for cmd in README_COMMANDS:
        line = ("python -m edge_embedder.convert." if cmd[0] == "tiny_clip" else "edge-embedder ") + " ".join(cmd)
        assert line in bash, f"docs/text.md lacks the step: {line}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_runs_from_a_folder_outside_the_checkout(page, venv, tmp_path, request):
    blocks, needs = PARSED[page]
    work = tmp_path / "work"
    work.mkdir()
    if "tiny-clip" in needs:
        pair = request.getfixturevalue("clip_pair")
        shutil.copytree(pair["checkpoint"], work / "tiny-clip")
        for key in ("image", "text"):
            shutil.copy(pair[key], work / pair[key].name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["HOME"] = str(tmp_path / "home")  # nothing of the developer's own configuration
    (tmp_path / "home").mkdir()
    env["MPLBACKEND"] = "Agg"
    for block in blocks:
        if block.skip:
            continue
        if block.lang == "python":
            cmd = [str(venv / "bin" / "python"), "-c", block.code]
        else:
            cmd = ["bash", "-e", "-o", "pipefail", "-c", _runnable_bash(block.code)]
        r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{block} failed ({r.returncode}):\n{block.code}\n--- stderr\n{r.stderr[-3000:]}"
        assert str(ROOT) not in r.stdout, f"{block} printed a path into the checkout: the installed package must be used"
        if block.output is not None:
            assert output_matches(block.output, r.stdout), (
                f"{block} printed other output than the page shows.\n--- page\n{block.output}\n--- printed\n{r.stdout}"
            )


def test_python_blocks_type_check(tmp_path):
    """Every Python block passes mypy (the public types say what the examples do with them)."""
    pytest.importorskip("mypy")
    files = []
    for page, (blocks, _) in PARSED.items():
        for i, b in enumerate(b for b in blocks if b.lang == "python"):
            f = tmp_path / f"{page.stem.replace('-', '_')}_{i}.py"
            f.write_text(b.code)
            files.append(str(f))
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # the package as source (an editable install's hook is invisible to mypy)
    r = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary",
                        "--follow-imports", "silent", "--cache-dir", str(tmp_path / ".mypy_cache"), *files],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


@pytest.mark.parametrize("expected, actual, ok", [
    ("a\nb", "a\nb\n", True),
    ("a\n...\nd", "a\nb\nc\nd", True),
    ("a\n...\nd", "a\nd", True),
    ("x = ... ms", "x = 3.2 ms", True),
    ("x = ... ms", "x = 3.2 s", False),
    ("a\nb", "a\nb\nc", False),
    ("a", "", False),
])
def test_output_matching(expected, actual, ok):
    assert output_matches(expected, actual) is ok
