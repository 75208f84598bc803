"""The shipped EfficientNet-Lite0 ImageNet classifier through ImageClassifier: stored results, options, modes."""

from __future__ import annotations

import hashlib
import json
import threading

import numpy as np
import pytest

from edge_embedder import (
    BaseOptions,
    Category,
    ClassificationResult,
    EmbedderClosedError,
    ImageClassifier,
    ImageClassifierOptions,
    ImageProcessingOptions,
    OptionsError,
    RectF,
    RunningMode,
)
from edge_embedder.metadata import AssociatedFile, parse_label_file, read_tflite_metadata
from edge_embedder.resources import default_classifier_path

from .conftest import DATA, FIXTURES, MODELS, photo

_INT8_TOP1_FLOOR = 0.9  # shipped int8 vs fp32 classifier over the 48 agreement images (measured 46/48)
_INT8_MEAN_SCORE_DIFF = 1e-3  # measured 1.2e-4
_STORED_SCORE_TOL = 1e-4  # same file, same preprocessing: float noise only

# MediaPipe 1.2.2's ImageClassifier on the shipped fp32 classifier (independent of this runtime), recorded
# by tests/fixtures/make_shipped_reference.py; tests/test_interop_mediapipe.py checks MediaPipe still gives them.
_MP = json.loads((FIXTURES / "shipped_reference.json").read_text())["classifiers"]["fp32"]
TOP5 = {name: _MP[name]["top5"] for name in ("chelsea", "coffee")}
TOP1_SCORE = {name: _MP[name]["scores"][0] for name in ("chelsea", "coffee")}


def _classifier(model, **kw) -> ImageClassifier:
    return ImageClassifier.create_from_options(ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model),
                                                                      **kw))


def _summary(result: ClassificationResult) -> list[tuple]:
    return [(c.index, c.category_name, c.display_name) for c in result.classifications[0].categories]


def test_models_readme_lists_the_classifier_files_sha256():
    readme = (MODELS / "README.md").read_text()
    for variant in ("fp32", "int8"):
        path = default_classifier_path(variant)
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, path.name


def test_inspect_shows_labels_count_and_first_labels():
    from edge_embedder import inspect_model

    report = inspect_model(default_classifier_path())
    head = report["contract"]["heads"][0]
    assert report["contract"]["ok"] and report["contract"]["task"] == "image_classifier"
    assert head["labels"] == 1000 and head["first_labels"] == ["tench", "goldfish", "great white shark",
                                                                "tiger shark", "hammerhead"]
    assert head["label_files"] == [{"name": "labels.txt", "locale": "en"}]


def test_max_results_threshold_allowlist_and_denylist():
    chelsea = photo("chelsea")
    with _classifier(default_classifier_path(), max_results=3) as c:
        assert [k.index for k in c.classify(chelsea).classifications[0].categories] == TOP5["chelsea"][:3]
    with _classifier(default_classifier_path(), score_threshold=0.05) as c:
        cats = c.classify(chelsea).classifications[0].categories
        assert [k.index for k in cats] == [285, 282, 281] and all(k.score >= 0.05 for k in cats)
    with _classifier(default_classifier_path(), category_allowlist=["tabby", "espresso"]) as c:
        assert [k.category_name for k in c.classify(chelsea).classifications[0].categories] == ["tabby", "espresso"]
    with _classifier(default_classifier_path(), category_denylist=["Egyptian cat"], max_results=1) as c:
        assert c.classify(chelsea).classifications[0].categories[0].index == 282
    with _classifier(default_classifier_path(), category_allowlist=["crane"]) as c:  # a repeated name: both classes
        assert sorted(k.index for k in c.classify(chelsea).classifications[0].categories) == [134, 517]
    with _classifier(default_classifier_path(), display_names_locale="fr") as c:
        top = c.classify(chelsea).classifications[0].categories[0]
        assert top.category_name == "Egyptian cat" and top.display_name is None


# --------------------------------------------------------------------------- #
# The shipped ImageNet classifier
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module", params=["fp32", "int8"])
def shipped(request):
    with _classifier(default_classifier_path(request.param), max_results=5) as c:
        yield request.param, c


def test_shipped_classifier_top5(shipped):
    variant, clf = shipped
    for name, want in TOP5.items():
        res = clf.classify(DATA / f"{name}.png")
        cats = res.classifications[0].categories
        assert res.timestamp_ms is None and len(cats) == 5
        assert cats[0].index == want[0]
        assert cats[0].category_name == cats[0].display_name == {"chelsea": "Egyptian cat", "coffee": "espresso"}[name]
        assert res.classifications[0].head_name == "probability"
        assert [c.score for c in cats] == sorted((c.score for c in cats), reverse=True)
        if variant == "fp32":
            assert [c.index for c in cats] == want
            assert cats[0].score == pytest.approx(TOP1_SCORE[name], abs=_STORED_SCORE_TOL)


def test_all_classes_by_default_and_scores_are_probabilities():
    with ImageClassifier.create_from_model_path(default_classifier_path()) as clf:
        cats = clf.classify(photo("coffee")).classifications[0].categories
        assert len(cats) == 1000 and sorted(c.index for c in cats) == list(range(1000))
        assert sum(c.score for c in cats) == pytest.approx(1.0, abs=1e-4)  # softmax in the graph
        assert isinstance(cats[0], Category) and cats[0] == Category(967, cats[0].score, "espresso", "espresso")


def test_roi_and_rotation_are_the_embedders(shipped):
    """The classifier runs the vision core's geometry: same input tensor as the embedder's ROI / rotation."""
    _, clf = shipped
    img = photo("coffee")
    h, w = img.shape[:2]
    roi = ImageProcessingOptions(RectF(0.1, 0.2, 0.9, 0.8), rotation_degrees=90)
    crop = np.ascontiguousarray(img[int(0.2 * h):int(0.8 * h), int(0.1 * w):int(0.9 * w)])
    a = clf.classify(img, roi).classifications[0].categories[0]
    b = clf.classify(np.ascontiguousarray(np.rot90(crop, -1))).classifications[0].categories[0]
    assert a.index == b.index == 967


def test_int8_tracks_fp32_over_48_images():
    from edge_embedder.convert.build_default_models import classifier_agreement

    rep = classifier_agreement(default_classifier_path("fp32"), default_classifier_path("int8"))
    assert rep["images"] >= 40
    assert rep["top1_agreement"] >= _INT8_TOP1_FLOOR, rep["disagreements"]
    assert rep["mean_abs_score_diff"] <= _INT8_MEAN_SCORE_DIFF


# --------------------------------------------------------------------------- #
# Running modes and lifecycle
# --------------------------------------------------------------------------- #


def test_video_and_live_stream_modes():
    base = BaseOptions(model_asset_path=default_classifier_path("int8"))
    frames = [photo("chelsea"), photo("coffee")]
    with ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base, running_mode=RunningMode.VIDEO,
                                                                    max_results=1)) as video:
        results = [video.classify_for_video(f, i * 33) for i, f in enumerate(frames)]
        assert [r.timestamp_ms for r in results] == [0, 33]
        assert [r.classifications[0].categories[0].index for r in results] == [285, 967]
        with pytest.raises(OptionsError, match="strictly increasing"):
            video.classify_for_video(frames[0], 33)
        with pytest.raises(OptionsError, match="needs running_mode IMAGE"):
            video.classify(frames[0])
    got: dict[int, int] = {}
    done = threading.Event()

    def on_result(result, image, timestamp_ms):
        got[timestamp_ms] = result.classifications[0].categories[0].index
        done.set()

    live = ImageClassifier.create_from_options(ImageClassifierOptions(
        base_options=base, running_mode=RunningMode.LIVE_STREAM, result_callback=on_result, max_results=1))
    live.classify_async(frames[1], 5)
    assert done.wait(30)
    live.close()
    assert got == {5: 967} and live.live_stream_stats.processed == 1


def test_close_is_idempotent_and_threads_share_one_classifier():
    clf = ImageClassifier.create_from_model_path(default_classifier_path("int8"))
    images = [photo(n) for n in ("chelsea", "coffee", "astronaut", "rocket")]
    serial = [_summary(clf.classify(im)) for im in images]
    out: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            out[k] = [_summary(clf.classify(im)) for im in images]
        except BaseException as exc:  # a worker's failure must fail the test, not vanish with its thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(out) == [0, 1, 2] and all(v == serial for v in out.values())
    assert clf.last_timings is not None and clf.last_timings.postprocess_ns > 0
    clf.close()
    clf.close()
    with pytest.raises(EmbedderClosedError):
        clf.classify(images[0])
    assert "closed" in repr(clf)


def test_associated_file_named_in_metadata_and_packed():
    md = read_tflite_metadata(default_classifier_path().read_bytes())
    (labels,) = md.outputs[0].associated_files
    assert labels == AssociatedFile("labels.txt", "TENSOR_AXIS_LABELS", labels.description, "en")
    from edge_embedder.convert.efficientnet_lite0 import imagenet_labels

    assert parse_label_file(md.file("labels.txt")) == imagenet_labels()
