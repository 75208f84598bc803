"""benchmarks/record.py: every results file names the command that wrote it, and record.py writes what ran."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from edge_embedder.bench import record

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
BENCHMARKS = RESULTS.parent


def test_every_results_file_is_regenerable():
    """A results file is either one of record.py's, or names its command (an existing script) near the top."""
    known = {r.name for r in record.RECORDS}
    for path in sorted(RESULTS.glob("*.md")):
        if path.stem.endswith("_notes"):
            continue  # commentary on a results file, marked as such
        if path.stem in known:
            continue
        head = "\n".join(path.read_text(encoding="utf-8").splitlines()[:8])
        m = re.search(r"`python ((?:benchmarks|tests/arm)/\w+\.py)[^`]*`", head)
        assert m, f"{path.name}: names no command in its first lines and is not in record.py's list"
        assert (BENCHMARKS.parent / m.group(1)).exists(), f"{path.name}: {m.group(0)} names no script"


def test_records_name_existing_scripts_and_their_own_file():
    for r in record.RECORDS:
        assert r.kind in ("stdout", "self"), r
        assert r.script == "cli" or (BENCHMARKS / f"{r.script}.py").exists(), r
        if r.kind == "self":
            assert any("{out}" in a or "{results}" in a for a in r.args), r  # it is told where to write
        line = record.command_line(r)
        assert "{" not in line and "/tmp" not in line and "/work" not in line, line


def test_record_writes_the_scripts_output_under_a_header(tmp_path, monkeypatch):
    r = record.Record("overhead_small", "bench_embed_overhead", ("--threads", "1", "--runs", "3", "--warmup", "1"),
                      "stdout", "embed() overhead, a tiny run")
    assert record.run(r, tmp_path)
    text = (tmp_path / "overhead_small.md").read_text()
    assert text.startswith("<!-- written by `python benchmarks/record.py overhead_small`")
    assert "`python benchmarks/bench_embed_overhead.py --threads 1 --runs 3 --warmup 1`" in text
    assert "SIMD flags:" in text and "load average" in text
    assert "| bare invoke() |" in text  # the script's own table, verbatim


def test_record_puts_the_header_on_a_file_the_script_wrote(tmp_path):
    r = record.Record("live_small", "bench_live_stream", ("--threads", "1", "--frames", "5", "--fps", "60",
                                                          "-o", "{out}"), "self", "live stream, a tiny run")
    assert record.run(r, tmp_path)
    text = (tmp_path / "live_small.md").read_text()
    assert text.startswith("<!-- written by `python benchmarks/record.py live_small`")
    assert "-o benchmarks/results/live_small.md`" in text  # the command as typed from the repository root
    assert "| embed_async() return |" in text  # the script's own file, below the header


def test_a_failed_run_leaves_the_file_as_it_was(tmp_path):
    (tmp_path / "broken.md").write_text("old figures\n")
    r = record.Record("broken", "bench_embed_overhead", ("--runs", "not-a-number"), "stdout", "fails")
    assert not record.run(r, tmp_path)
    assert (tmp_path / "broken.md").read_text() == "old figures\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_lists_and_refuses_unknown_names(capsys):
    assert record.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{r.name}.md" in out for r in record.RECORDS)
    with pytest.raises(SystemExit) as exc:
        record.main(["no_such_results"])
    assert exc.value.code == 2


def test_results_files_hold_no_machine_paths():
    """Results are read on other machines: no home, checkout or temporary folder of the one that wrote them."""
    pattern = re.compile(r"(/work/|/root/|/home/|/tmp/|/var/tmp/|C:\\\\Users)")
    for path in sorted(RESULTS.iterdir()):
        if path.suffix not in (".md", ".json", ".csv"):
            continue
        hits = sorted(set(pattern.findall(path.read_text(encoding="utf-8", errors="replace"))))
        assert not hits, f"{path.name}: machine paths {hits}"
