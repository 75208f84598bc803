"""ImageClassifier: reference fixtures written by tflite-support, the shipped ImageNet classifier, options, contract.

The reference fixtures (tests/fixtures/reference_metadata/classifier/, made by
make_classifier_reference.py in a throwaway tflite-support venv) carry labels,
en / fr display-name files, score calibration (LOG, IDENTITY,
INVERSE_LOGISTIC), thresholds and a uint8 output; each has the reference
reader's golden JSON, the exact packed files and what MediaPipe 1.2.2's
ImageClassifier returned for it. Our reader must read what tflite-support
wrote, and our classifier must return what MediaPipe returned.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    ClassificationResult,
    ImageClassifier,
    ImageClassifierOptions,
    MetadataError,
    OptionsError,
    OutputContractError,
    RunningMode,
)
from edge_embedder.metadata import (
    CalibrationParams,
    ScoreCalibration,
    format_label_file,
    format_score_calibration,
    parse_label_file,
    parse_score_calibration,
    populate_tflite_metadata,
    read_packed_files,
    read_tflite_metadata,
)

from .conftest import DATA, REFERENCE, ROOT, photo

CLASSIFIER = REFERENCE / "classifier"
FIXTURES = ["ref_classifier_float", "ref_classifier_locales", "ref_classifier_threshold", "ref_classifier_calib_log",
            "ref_classifier_calib_identity_threshold", "ref_classifier_calib_inverse_logistic", "ref_classifier_uint8"]

# Named tolerances.
_GOLDEN_FLOAT_TOL = 1e-5  # the reference reader prints floats with 6 significant digits
_MEDIAPIPE_SCORE_TOL = 1e-6  # same file, same (pixel-exact) preprocessing: float32 rounding only
_CALIBRATION_TOL = 1e-6  # the calibration formula in float64 vs MediaPipe's float32 (measured < 4e-8)


def _golden(name: str) -> dict:
    return json.loads((CLASSIFIER / f"{name}.json").read_text())


def _mediapipe(name: str) -> dict:
    return json.loads((CLASSIFIER / f"{name}.mediapipe.json").read_text())


def _input(doc: dict, key: str):
    inp = doc["inputs"][key]
    if "file" in inp:
        return str(ROOT / inp["file"])
    arr = np.empty((inp["height"], inp["width"], 3), np.uint8)
    arr[...] = inp["constant_rgb"]
    return arr


def _classifier(model, **kw) -> ImageClassifier:
    base = BaseOptions(model_asset_buffer=model) if isinstance(model, bytes) else BaseOptions(model_asset_path=model)
    return ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base, **kw))


def _summary(result: ClassificationResult) -> list[tuple]:
    return [(c.index, c.category_name, c.display_name) for c in result.classifications[0].categories]


# --------------------------------------------------------------------------- #
# Reading what tflite-support wrote
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", FIXTURES)
def test_reader_reads_the_reference_classifier_metadata(name):
    data = (CLASSIFIER / f"{name}.tflite").read_bytes()
    md = read_tflite_metadata(data)
    ref = _golden(name)["subgraph_metadata"][0]["output_tensor_metadata"][0]
    out = md.outputs[0]
    assert out.name == ref["name"] and out.description == ref["description"] and out.content == "feature"
    assert [(f.name, f.type, f.locale, f.description) for f in out.associated_files] == [
        (f["name"], f["type"], f.get("locale"), f.get("description")) for f in ref["associated_files"]]
    units = {u["options_type"]: u["options"] for u in ref.get("process_units", [])}
    if "ScoreCalibrationOptions" in units:
        opts = units["ScoreCalibrationOptions"]
        assert out.score_calibration.transformation == opts.get("score_transformation", "IDENTITY")
        assert out.score_calibration.default_score == pytest.approx(opts["default_score"], abs=_GOLDEN_FLOAT_TOL)
    else:
        assert out.score_calibration is None
    if "ScoreThresholdingOptions" in units:
        assert out.score_threshold == pytest.approx(units["ScoreThresholdingOptions"]["global_score_threshold"],
                                                    abs=_GOLDEN_FLOAT_TOL)
    else:
        assert out.score_threshold is None
    assert out.stats_max == pytest.approx(ref["stats"]["max"]) and out.stats_min == pytest.approx(ref["stats"]["min"])
    # The packed files: the exact bytes, in tflite-support's order.
    packed = json.loads((CLASSIFIER / f"{name}.files" / "packed_files.json").read_text())
    assert list(read_packed_files(data)) == packed["get_packed_associated_file_list"]
    for f in packed["files"]:
        assert md.file(f["name"]) == (CLASSIFIER / f"{name}.files" / f["name"]).read_bytes()


def test_label_and_calibration_file_formats():
    assert parse_label_file(b"cat\r\ndog\r\n") == ["cat", "dog"]
    assert parse_label_file(b"cat\ndog") == parse_label_file(b"cat\ndog\n\n") == ["cat", "dog"]
    assert parse_label_file(b"cat\n\ndog\n") == ["cat", "", "dog"]
    assert parse_label_file("caf\u00e9\n".encode()) == ["caf\u00e9"]
    assert format_label_file(["a", "b"]) == b"a\nb\n"
    with pytest.raises(MetadataError, match="line break"):
        format_label_file(["a\nb"])
    with pytest.raises(MetadataError, match="UTF-8"):
        parse_label_file(b"\xff\xfe")
    text = (CLASSIFIER / "ref_classifier_calib_log.files" / "score_calibration.txt").read_bytes()
    params = parse_score_calibration(text)
    assert len(params) == 6 and params[2] is None and params[1] == CalibrationParams(0.9, 1.5, 0.5, 0.1)
    assert format_score_calibration(params) == text  # no final newline, as the fixtures (and MediaPipe) need
    assert parse_score_calibration(text + b"\n", num_classes=6) == params  # a final newline is a terminator
    assert len(parse_score_calibration(text + b"\n")) == 7  # ... and one more class for MediaPipe
    with pytest.raises(MetadataError, match="line 2"):
        parse_score_calibration(b"1,2,3\n1,2\n")
    with pytest.raises(MetadataError, match="scale >= 0"):
        parse_score_calibration(b"-1,2,3\n")


# --------------------------------------------------------------------------- #
# Returning what MediaPipe returned
# --------------------------------------------------------------------------- #


def _mediapipe_runs():
    for name in FIXTURES:
        has_threshold = read_tflite_metadata((CLASSIFIER / f"{name}.tflite").read_bytes()).outputs[0].score_threshold
        for i, run in enumerate(_mediapipe(name)["runs"]):
            thr = run["options"].get("score_threshold")
            if has_threshold is not None and thr is not None and thr <= 0:
                # The documented difference: our threshold <= 0 replaces the model's, MediaPipe's is
                # ignored (test_user_threshold_replaces_the_model_threshold checks ours).
                continue
            yield pytest.param(name, i, id=f"{name}-{i}-{run['input']}-{json.dumps(run['options'], sort_keys=True)}")


@pytest.mark.parametrize("name,run_index", list(_mediapipe_runs()))
def test_results_match_mediapipe_goldens(name, run_index):
    doc = _mediapipe(name)
    run = doc["runs"][run_index]
    opts = dict(run["options"])
    with _classifier(CLASSIFIER / f"{name}.tflite", **opts) as clf:
        res = clf.classify(_input(doc, run["input"]))
    want = run["classifications"][0]
    got = res.classifications[0]
    assert (got.head_index, got.head_name) == (want["head_index"], want["head_name"])
    assert _summary(res) == [(c["index"], c["category_name"], c["display_name"]) for c in want["categories"]]
    np.testing.assert_allclose([c.score for c in got.categories], [c["score"] for c in want["categories"]],
                               atol=_MEDIAPIPE_SCORE_TOL, rtol=0)


def test_user_threshold_replaces_the_model_threshold():
    path = CLASSIFIER / "ref_classifier_threshold.tflite"  # metadata threshold 0.15
    with _classifier(path) as default, _classifier(path, score_threshold=0.0) as zero, \
            _classifier(path, score_threshold=-1.0) as negative, _classifier(path, score_threshold=0.25) as high:
        chelsea = str(DATA / "chelsea.png")
        kept = [c.score for c in default.classify(chelsea).classifications[0].categories]
        assert kept and min(kept) >= np.float32(0.15)
        assert len(zero.classify(chelsea).classifications[0].categories) == 6  # every score >= 0
        assert len(negative.classify(chelsea).classifications[0].categories) == 6
        assert all(c.score >= np.float32(0.25) for c in high.classify(chelsea).classifications[0].categories)


def test_calibration_follows_the_schema_formula():
    """Calibrated scores = scale / (1 + exp(-(slope * g(x) + offset))), default when x <= min_score or no line."""
    raw_path = CLASSIFIER / "ref_classifier_float.tflite"
    lines = parse_score_calibration((CLASSIFIER / "ref_classifier_calib_log.files" / "score_calibration.txt").read_bytes())
    g = {"IDENTITY": lambda v: v, "LOG": np.log, "INVERSE_LOGISTIC": lambda v: np.log(v) - np.log(1 - v)}
    for name, tr in (("ref_classifier_calib_log", "LOG"), ("ref_classifier_calib_identity_threshold", "IDENTITY"),
                     ("ref_classifier_calib_inverse_logistic", "INVERSE_LOGISTIC")):
        with _classifier(raw_path) as raw, _classifier(CLASSIFIER / f"{name}.tflite", score_threshold=-1.0) as cal:
            for img in ("chelsea", "coffee"):
                x = {c.index: c.score for c in raw.classify(photo(img)).classifications[0].categories}
                y = {c.index: c.score for c in cal.classify(photo(img)).classifications[0].categories}
                for i, p in enumerate(lines):
                    if p is None or (p.min_score is not None and not x[i] > p.min_score):
                        want = 0.05
                    else:
                        want = p.scale / (1 + np.exp(-(p.slope * g[tr](np.float64(x[i])) + p.offset)))
                    assert y[i] == pytest.approx(want, abs=_CALIBRATION_TOL), (name, img, i)


# --------------------------------------------------------------------------- #
# Contract rules (files made with our writer from the reference ones)
# --------------------------------------------------------------------------- #


def _rewritten(name: str, **changes) -> bytes:
    """The fixture with its metadata changed (output tensor fields, files) by our writer."""
    data = (CLASSIFIER / f"{name}.tflite").read_bytes()
    md = read_tflite_metadata(data)
    files = dict(md.files)
    files.update(changes.pop("files", {}))
    out = replace(md.outputs[0], **changes)
    return populate_tflite_metadata(data, replace(md, outputs=[out], files=files))


def test_label_file_with_the_wrong_count_is_a_contract_error():
    with pytest.raises(OutputContractError, match=r"labels.txt' expected 6 labels \(one per class\), got 5"):
        _classifier(_rewritten("ref_classifier_float", files={"labels.txt": b"a\nb\nc\nd\ne\n"}))
    with pytest.raises(OutputContractError, match=r"labels_fr.txt' \(locale 'fr'\) expected 6 labels"):
        _classifier(_rewritten("ref_classifier_locales", files={"labels_fr.txt": b"a\n"}))


def test_score_calibration_rules():
    ok = (CLASSIFIER / "ref_classifier_calib_log.files" / "score_calibration.txt").read_bytes()
    with pytest.raises(OutputContractError, match="expected 6 lines"):
        _classifier(_rewritten("ref_classifier_calib_log", files={"score_calibration.txt": ok.rsplit(b"\n", 1)[0]}))
    with _classifier(_rewritten("ref_classifier_calib_log", files={"score_calibration.txt": ok + b"\n"})) as c:
        assert len(c.model_spec.heads[0].calibration.params) == 6  # a final newline is fine here
    with pytest.raises(MetadataError, match="line 1"):
        _classifier(_rewritten("ref_classifier_calib_log", files={"score_calibration.txt": b"x,y,z\n" + ok}))
    with pytest.raises(MetadataError, match="without ScoreCalibrationOptions"):
        _classifier(_rewritten("ref_classifier_calib_log", score_calibration=None))
    no_file = [f for f in read_tflite_metadata((CLASSIFIER / "ref_classifier_float.tflite").read_bytes())
               .outputs[0].associated_files]
    with pytest.raises(MetadataError, match="exactly 1 TENSOR_AXIS_SCORE_CALIBRATION file, got 0"):
        _classifier(_rewritten("ref_classifier_float", score_calibration=ScoreCalibration("LOG", 0.1),
                               associated_files=no_file))


def test_models_without_labels_still_classify_by_index():
    data = _rewritten("ref_classifier_float", associated_files=[], files={})
    with _classifier(data) as clf:
        cats = clf.classify(photo("chelsea")).classifications[0].categories
        assert len(cats) == 6 and all(c.category_name is None and c.display_name is None for c in cats)
        assert clf.model_spec.heads[0].labels is None
        with pytest.raises(OptionsError, match="no label file"):
            _classifier(data, category_allowlist=["cat"])


# --------------------------------------------------------------------------- #
# Options
# --------------------------------------------------------------------------- #


def test_options_are_validated():
    base = BaseOptions(model_asset_path=CLASSIFIER / "ref_classifier_locales.tflite")
    with pytest.raises(OptionsError, match="mutually exclusive"):
        ImageClassifierOptions(base_options=base, category_allowlist=["a"], category_denylist=["b"])
    with pytest.raises(OptionsError, match="max_results"):
        ImageClassifierOptions(base_options=base, max_results=0)
    with pytest.raises(OptionsError, match="max_results"):
        ImageClassifierOptions(base_options=base, max_results=-2)
    with pytest.raises(OptionsError, match="score_threshold"):
        ImageClassifierOptions(base_options=base, score_threshold=float("nan"))
    with pytest.raises(OptionsError, match="at least one"):
        ImageClassifierOptions(base_options=base, category_allowlist=[])
    with pytest.raises(OptionsError, match="list of category names"):
        ImageClassifierOptions(base_options=base, category_allowlist="coffee")
    with pytest.raises(OptionsError, match="display_names_locale"):
        ImageClassifierOptions(base_options=base, display_names_locale=1)
    assert ImageClassifierOptions(base_options=base, max_results=None, display_names_locale=None).max_results == -1
    with pytest.raises(OptionsError, match="did you mean 'coffee'"):
        _classifier(CLASSIFIER / "ref_classifier_locales.tflite", category_allowlist=["cofee"])
    with pytest.raises(OptionsError, match="unknown"):  # display names are not category names
        _classifier(CLASSIFIER / "ref_classifier_locales.tflite", category_denylist=["House cat"])
    with pytest.raises(OptionsError, match="result_callback"):
        ImageClassifierOptions(base_options=base, running_mode=RunningMode.LIVE_STREAM)


def test_allowlist_denylist_and_max_results_on_the_reference_model():
    path = CLASSIFIER / "ref_classifier_locales.tflite"
    chelsea = photo("chelsea")
    with _classifier(path) as c:
        order = [k.category_name for k in c.classify(chelsea).classifications[0].categories]
    with _classifier(path, category_allowlist=["dog", "cat"]) as c:
        assert [k.category_name for k in c.classify(chelsea).classifications[0].categories] == [
            n for n in order if n in ("dog", "cat")]
    with _classifier(path, category_denylist=[order[0]], max_results=2) as c:
        assert [k.category_name for k in c.classify(chelsea).classifications[0].categories] == order[1:3]
