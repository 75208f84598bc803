"""Mutation test: 100 damaged copies each of the shipped classifier and a converted tiny text tower.

Each copy is opened and run in a child process (``benchmarks/mutation.py``,
which also writes ``benchmarks/results/mutation.md``): a file that carries its
checksum must end every time in a typed error, never in a silently different
result, a foreign exception, a crash or a hang.
"""

from __future__ import annotations

import pytest

from .conftest import MODELS

pytestmark = pytest.mark.slow

N_MUTANTS = 100


def _check(run: dict) -> None:
    assert run["sealed"], f"{run['file']} carries no checksum record"
    bad = [r for r in run["rows"] if r["verdict"] not in ("typed error", "same")]
    assert not bad, f"{run['file']}: {len(bad)} mutants not refused: {bad[:5]}"
    # Every class of damage was tried (the plan is deterministic), and the checksum is what refused them.
    assert all(sum(c.values()) for c in run["by_kind"].values()), run["by_kind"]
    assert run["counts"]["typed error"] == N_MUTANTS, run["counts"]
    assert set(run["error_types"]) <= {"ModelLoadError", "MetadataError"}, run["error_types"]


def test_damaged_copies_of_the_shipped_classifier_never_give_a_result():
    from edge_embedder.bench.mutation import mutation_run

    _check(mutation_run(MODELS / "efficientnet_lite0_classifier_fp32.tflite", "classifier", N_MUTANTS, seed=0))


def test_damaged_copies_of_a_converted_text_tower_never_give_a_result(clip_pair):
    from edge_embedder.bench.mutation import mutation_run

    _check(mutation_run(clip_pair["text"], "text", N_MUTANTS, seed=0))


def test_the_harness_sees_silent_differences_in_a_file_without_checksum():
    """The same mutants without the checksum record: the harness must report what the checksum prevents."""
    from edge_embedder.bench.mutation import mutation_run

    run = mutation_run(MODELS / "efficientnet_lite0_classifier_fp32.tflite", "classifier", 12, seed=1, sealed=False)
    assert not run["sealed"]
    assert run["counts"]["DIFFERENT"] >= 1, run["counts"]  # flipped weights: other scores, no error
