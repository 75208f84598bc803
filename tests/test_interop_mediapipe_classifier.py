"""Interop with MediaPipe Tasks' ImageClassifier (skipped when mediapipe is not installed).

* MediaPipe loads classifier files whose metadata our writer wrote (the shipped
  ImageNet classifiers, converted by our pipeline) and returns the same top-5
  categories as ImageClassifier: indices and names identical, scores within
  1e-5, with ROI and rotation too.
* Our writer, fed the labels / locales / calibration / thresholds of the
  reference fixtures, writes files MediaPipe reads exactly as it reads the
  tflite-support-written ones (its recorded results on those).

Every MediaPipe call runs in a child process with a timeout
(tests/fixtures/mediapipe_classify_worker.py): MediaPipe 1.2.2 can hang after a
graph error, and a hang must fail one test, not stall the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_embedder import BaseOptions, ImageClassifier, ImageClassifierOptions, ImageProcessingOptions, RectF
from edge_embedder.metadata import (
    AssociatedFile,
    CalibrationParams,
    ModelMetadata,
    NormalizationOptions,
    ScoreCalibration,
    TensorMetadata,
    format_label_file,
    format_score_calibration,
    parse_score_calibration,
    populate_tflite_metadata,
)
from edge_embedder.resources import default_classifier_path

from .conftest import DATA, FIXTURES, REFERENCE, ROOT

pytest.importorskip("mediapipe", reason="mediapipe is not installed: pip install -e '.[dev]' (the mediapipe extra)")

from .fixtures import make_classifier_reference as ref  # noqa: E402

CLASSIFIER = REFERENCE / "classifier"
WORKER = FIXTURES / "mediapipe_classify_worker.py"
_TIMEOUT_S = 300
_SCORE_TOL = 1e-5  # the tolerance: same file, pixel-exact preprocessing, interpreter float noise
_GOLDEN_TOL = 1e-6  # our file vs tflite-support's file, both in MediaPipe: identical graphs

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
GEOMETRY = [(None, 0), ((0.1, 0.2, 0.7, 0.9), 0), (None, 90), ((0.2, 0.1, 0.9, 0.8), -90), ((0.0, 0.5, 0.5, 1.0), 180)]


def _mediapipe(requests: list[dict]) -> list[dict]:
    proc = subprocess.run([sys.executable, str(WORKER)], input=json.dumps(requests), capture_output=True, text=True,
                          timeout=_TIMEOUT_S)
    head, sep, body = proc.stdout.rpartition("@@RESULTS@@")
    assert sep, f"MediaPipe worker failed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    results = json.loads(body)
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors[0]
    return results


@pytest.fixture(scope="module")
def shipped_results():
    """MediaPipe's top 5 for every (model, photo, geometry), computed in one child process."""
    requests, keys = [], []
    for variant in ("fp32", "int8"):
        for name in PHOTOS:
            for roi, rot in GEOMETRY:
                requests.append({"model": str(default_classifier_path(variant)), "options": {"max_results": 5},
                                 "image": str(DATA / f"{name}.png"), "roi": roi, "rotation": rot})
                keys.append((variant, name, roi, rot))
    return dict(zip(keys, _mediapipe(requests)))


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_mediapipe_reads_our_classifier_and_agrees(shipped_results, variant):
    opts = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=default_classifier_path(variant)),
                                  max_results=5)
    with ImageClassifier.create_from_options(opts) as clf:
        for name in PHOTOS:
            for roi, rot in GEOMETRY:
                ipo = ImageProcessingOptions(None if roi is None else RectF(*roi), rot)
                ours = clf.classify(DATA / f"{name}.png", ipo).classifications[0]
                theirs = shipped_results[(variant, name, roi, rot)]["classifications"][0]
                where = f"{variant} {name} roi={roi} rotation={rot}"
                assert (ours.head_index, ours.head_name) == (theirs["head_index"], theirs["head_name"]), where
                assert [(c.index, c.category_name, c.display_name) for c in ours.categories] == [
                    (c["index"], c["category_name"], c["display_name"]) for c in theirs["categories"]], where
                np.testing.assert_allclose([c.score for c in ours.categories],
                                           [c["score"] for c in theirs["categories"]], atol=_SCORE_TOL, rtol=0,
                                           err_msg=where)
    top1 = {name: shipped_results[(variant, name, None, 0)]["classifications"][0]["categories"][0]["index"]
            for name in ("chelsea", "coffee")}
    assert top1 == {"chelsea": 285, "coffee": 967}


# --------------------------------------------------------------------------- #
# Our writer, MediaPipe's reading: the reference fixtures rebuilt from their content
# --------------------------------------------------------------------------- #


def _labels(name, lines, locale=None):
    return AssociatedFile(name, "TENSOR_AXIS_LABELS", description="Labels for categories.", locale=locale), \
        format_label_file(lines)


def _our_fixture(name: str) -> bytes:
    """The reference fixture ``name``, its metadata written from scratch by our writer."""
    uint8 = name == "ref_classifier_uint8"
    base = (CLASSIFIER / (ref.BASE_UINT8_OUT if uint8 else ref.BASE_FLOAT)).read_bytes()
    files = [_labels("labels.txt", ref.LABELS)]
    calibration = threshold = None
    if name == "ref_classifier_locales":
        files += [_labels("labels_en.txt", ref.LABELS_EN, "en"), _labels("labels_fr.txt", ref.LABELS_FR, "fr")]
    if uint8:
        files.append(_labels("labels_fr.txt", ref.LABELS_FR, "fr"))
    transformation = {"ref_classifier_calib_log": "LOG", "ref_classifier_calib_identity_threshold": "IDENTITY",
                      "ref_classifier_calib_inverse_logistic": "INVERSE_LOGISTIC"}.get(name)
    if transformation:
        params = parse_score_calibration("\n".join(ref.CALIBRATION_LINES).encode())
        assert all(p is None or isinstance(p, CalibrationParams) for p in params)
        files.append((AssociatedFile("score_calibration.txt", "TENSOR_AXIS_SCORE_CALIBRATION"),
                      format_score_calibration(params)))
        calibration = ScoreCalibration(transformation, ref.CALIBRATION_DEFAULT_SCORE)
    if name == "ref_classifier_threshold":
        threshold = ref.THRESHOLD_RAW
    if name == "ref_classifier_calib_identity_threshold":
        threshold = ref.THRESHOLD_CALIBRATED
    md = ModelMetadata(
        name=f"ours: {name}",
        inputs=[TensorMetadata(name="image", content="image", color_space="RGB",
                               normalization=NormalizationOptions((ref.NORM_MEAN,), (ref.NORM_STD,)))],
        outputs=[TensorMetadata(name="probability", content="feature", associated_files=[f for f, _ in files],
                                score_calibration=calibration, score_threshold=threshold)],
        files={f.name: data for f, data in files},
    )
    return populate_tflite_metadata(base, md)


WRITER_FIXTURES = ["ref_classifier_locales", "ref_classifier_threshold", "ref_classifier_calib_log",
                   "ref_classifier_calib_identity_threshold", "ref_classifier_calib_inverse_logistic",
                   "ref_classifier_uint8"]


def test_mediapipe_reads_our_writers_labels_locales_calibration_and_thresholds(tmp_path):
    requests, expected = [], []
    for name in WRITER_FIXTURES:
        path = tmp_path / f"ours_{name}.tflite"
        path.write_bytes(_our_fixture(name))
        golden = json.loads((CLASSIFIER / f"{name}.mediapipe.json").read_text())
        for run in golden["runs"]:
            inp = golden["inputs"][run["input"]]
            image = str(ROOT / inp["file"]) if "file" in inp else inp
            requests.append({"model": str(path), "options": run["options"], "image": image})
            expected.append((name, run))
    for (name, run), got in zip(expected, _mediapipe(requests)):
        where = f"{name} {run['input']} {run['options']}"
        want, have = run["classifications"][0], got["classifications"][0]
        assert [(c["index"], c["category_name"], c["display_name"]) for c in have["categories"]] == [
            (c["index"], c["category_name"], c["display_name"]) for c in want["categories"]], where
        np.testing.assert_allclose([c["score"] for c in have["categories"]], [c["score"] for c in want["categories"]],
                                   atol=_GOLDEN_TOL, rtol=0, err_msg=where)
