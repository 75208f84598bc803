"""TFLite metadata flatbuffer: our reader against the reference writer, our writer round trips."""

from __future__ import annotations

import json

import pytest

from edge_embedder import ImageEmbedder, MetadataError, ModelContractError, ModelLoadError
from edge_embedder.metadata import (
    MetadataReader,
    ModelMetadata,
    NormalizationOptions,
    TensorMetadata,
    build_metadata_buffer,
    from_onnx_props,
    parse_metadata_buffer,
    populate_tflite_metadata,
    read_tflite_metadata,
    to_onnx_props,
)

from .conftest import REFERENCE

# The reference reader prints floats with 6 significant digits.
_GOLDEN_FLOAT_TOL = 1e-5

# ref_*: written by tflite-support's MetadataPopulator; ours_written: written by our writer.
# Each .json is tflite-support's MetadataDisplayer view of the file.
REFERENCE_FILES = ["ref_float_norm1", "ref_float_norm3_custom", "ref_uint8", "ours_written"]


def _golden(name: str) -> dict:
    return json.loads((REFERENCE / f"{name}.json").read_text())


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reader_matches_reference_writer(name):
    """Files written by tflite-support's MetadataPopulator read back as its own displayer shows them."""
    md = MetadataReader.from_file(REFERENCE / f"{name}.tflite").metadata
    golden = _golden(name)
    assert md is not None
    for key in ("name", "description", "version", "author", "license", "min_parser_version"):
        assert getattr(md, key) == golden.get(key), key
    sg = golden["subgraph_metadata"][0]
    for ours, ref in zip(md.inputs + md.outputs, sg["input_tensor_metadata"] + sg["output_tensor_metadata"]):
        assert ours.name == ref.get("name")
        assert ours.description == ref.get("description")
        props = ref.get("content", {}).get("content_properties_type")
        assert ours.content == {"ImageProperties": "image", "FeatureProperties": "feature", None: None}[props]
        if props == "ImageProperties":
            assert ours.color_space == ref["content"]["content_properties"]["color_space"]
        units = [u for u in ref.get("process_units", []) if u["options_type"] == "NormalizationOptions"]
        if units:
            assert ours.normalization.mean == pytest.approx(units[0]["options"]["mean"], abs=_GOLDEN_FLOAT_TOL)
            assert ours.normalization.std == pytest.approx(units[0]["options"]["std"], abs=_GOLDEN_FLOAT_TOL)
        else:
            assert ours.normalization is None
        stats = ref.get("stats") or {}
        if "min" in stats:
            assert ours.stats_min == pytest.approx(stats["min"], abs=_GOLDEN_FLOAT_TOL)
            assert ours.stats_max == pytest.approx(stats["max"], abs=_GOLDEN_FLOAT_TOL)
    ref_custom = {c["name"]: bytes(c["data"]) for c in sg.get("custom_metadata", [])}
    assert dict(md.custom_metadata) == ref_custom
    assert len(md.inputs) == len(sg["input_tensor_metadata"])


def test_raw_metadata_buffer_parses_like_the_model():
    data = (REFERENCE / "ref_float_norm3_custom.metadata.bin").read_bytes()
    from_model = read_tflite_metadata((REFERENCE / "ref_float_norm3_custom.tflite").read_bytes())
    assert parse_metadata_buffer(data) == from_model
    assert from_model.custom_json("edge_embedder.recipe")["interpolation"] == "bicubic"


def test_model_without_metadata_reads_none():
    assert read_tflite_metadata((REFERENCE / "ref_no_metadata_float.tflite").read_bytes()) is None


def _sample_metadata(**kw) -> ModelMetadata:
    base = dict(
        name="tiny",
        description="a test model",
        version="3",
        author="edge_embedder",
        license="Apache-2.0",
        inputs=[TensorMetadata(name="image", description="in", content="image", color_space="RGB",
                               default_size=(32, 32),
                               normalization=NormalizationOptions((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)))],
        outputs=[TensorMetadata(name="embedding", content="feature", stats_min=(-1.0,), stats_max=(1.0,))],
        custom_metadata={"edge_embedder.recipe": b'{"sampler": "pil"}', "other": bytes(range(256))},
    )
    base.update(kw)
    return ModelMetadata(**base)


def test_writer_round_trip_and_golden_json():
    model = (REFERENCE / "ref_no_metadata_float.tflite").read_bytes()
    md = _sample_metadata()
    written = populate_tflite_metadata(model, md)
    back = read_tflite_metadata(written)
    assert back.min_parser_version == "1.5.0"  # custom_metadata arrived in schema 1.5.0
    assert back.inputs[0].normalization.mean == pytest.approx((123.675, 116.28, 103.53), rel=1e-6)
    assert back.custom("other") == bytes(range(256))
    assert back.to_dict()["inputs"][0]["default_size"] == {"width": 32, "height": 32}
    # Rewriting replaces the entry instead of growing the file.
    assert len(populate_tflite_metadata(written, md)) == len(written)


def test_writer_output_runs_and_is_read_by_embedder():
    model = (REFERENCE / "ref_no_metadata_float.tflite").read_bytes()
    md = _sample_metadata(custom_metadata={})
    with ImageEmbedder.create_from_options(
        __import__("edge_embedder").ImageEmbedderOptions(
            base_options=__import__("edge_embedder").BaseOptions(model_asset_buffer=populate_tflite_metadata(model, md))
        )
    ) as e:
        assert e.model_spec.normalization.std == pytest.approx((58.395, 57.12, 57.375), rel=1e-6)
        assert e.model_spec.outputs[0].name == "embedding"


def test_writer_checks_tensor_counts():
    model = (REFERENCE / "ref_no_metadata_float.tflite").read_bytes()
    with pytest.raises(MetadataError, match=r"number of output tensors \(1\) should match .* \(2\)"):
        populate_tflite_metadata(model, _sample_metadata(outputs=[TensorMetadata(), TensorMetadata()]))


def test_corrupt_metadata_buffer_is_a_metadata_error():
    good = build_metadata_buffer(_sample_metadata())
    with pytest.raises(MetadataError, match="M001"):
        parse_metadata_buffer(b"\x00" * 16)
    corrupt = good[:8] + b"\xff" * (len(good) - 8)
    with pytest.raises(MetadataError):
        parse_metadata_buffer(corrupt)


def test_reader_rejects_non_tflite():
    with pytest.raises(ModelLoadError, match="TFL3"):
        read_tflite_metadata(b"not a model at all")


def test_onnx_props_round_trip():
    md = _sample_metadata(custom_metadata={"edge_embedder.recipe": b'{"sampler": "pil"}'})
    props = to_onnx_props(md)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in props.items())
    back = from_onnx_props(props)
    assert back.inputs[0].normalization == md.inputs[0].normalization
    assert back.custom("edge_embedder.recipe") == b'{"sampler": "pil"}'
    assert from_onnx_props({}) is None
    with pytest.raises(MetadataError):
        from_onnx_props({"edge_embedder.metadata": "{not json"})


def test_reference_recipe_that_misses_the_input_size_is_refused():
    # The reference fixture's recipe names no sampler (so the default, bilinear-only
    # mediapipe one) yet asks for bicubic, and crops to 224 for a 32x32 input.
    with pytest.raises(ModelContractError, match="recipe"):
        ImageEmbedder.create_from_model_path(REFERENCE / "ref_float_norm3_custom.tflite")


def test_writer_reproduces_the_golden_file_the_reference_reader_checked():
    """ours_written.tflite was written by our writer; its .json is tflite-support's reading of it."""
    from .fixtures.make_writer_golden import golden_metadata, write_golden

    assert write_golden() == (REFERENCE / "ours_written.tflite").read_bytes()
    back, want = read_tflite_metadata(write_golden()), golden_metadata()
    assert back.inputs[0].normalization.mean == pytest.approx(want.inputs[0].normalization.mean, rel=1e-6)
    strip = lambda md: {**md.to_dict(), "inputs": [{**t, "normalization": None} for t in md.to_dict()["inputs"]]}  # noqa: E731
    assert strip(back) == {**strip(want), "min_parser_version": "1.5.0"}
    ref = _golden("ours_written")
    assert ref["min_parser_version"] == "1.5.0"
    assert ref["subgraph_metadata"][0]["input_tensor_metadata"][0]["content"]["content_properties"]["default_size"] == {
        "width": 32, "height": 32}


def _with_files(**kw) -> ModelMetadata:
    from edge_embedder.metadata import AssociatedFile, ScoreCalibration

    labels = AssociatedFile("labels.txt", "TENSOR_AXIS_LABELS", description="class names")
    french = AssociatedFile("labels_fr.txt", "TENSOR_AXIS_LABELS", locale="fr")
    calib = AssociatedFile("calibration.csv", "TENSOR_AXIS_SCORE_CALIBRATION")
    readme = AssociatedFile("README.txt", "DESCRIPTIONS", version="2")
    return _sample_metadata(
        outputs=[TensorMetadata(name="probabilities", content="feature", associated_files=[labels, french, calib],
                                score_calibration=ScoreCalibration("LOG", 0.25), score_threshold=0.125)],
        associated_files=[readme],
        files={"labels.txt": b"cat\ndog\n", "labels_fr.txt": "chat\nchien\n".encode(),
               "calibration.csv": b"1.0,2.0,0.5\n1.0,2.0,0.5,0.1\n", "README.txt": bytes(range(256))},
        **kw,
    )


def test_associated_files_round_trip_through_the_zip_and_the_interpreter():
    import zipfile
    from io import BytesIO

    from ai_edge_litert.interpreter import Interpreter

    from edge_embedder.metadata import read_packed_files

    model = (REFERENCE / "ref_no_metadata_float.tflite").read_bytes()
    md = _with_files()
    written = populate_tflite_metadata(model, md)
    back = read_tflite_metadata(written)
    assert back.outputs == md.outputs and back.associated_files == md.associated_files
    assert dict(back.files) == dict(md.files)
    out = back.outputs[0]
    assert [(f.name, f.type, f.locale) for f in out.associated_files] == [
        ("labels.txt", "TENSOR_AXIS_LABELS", None), ("labels_fr.txt", "TENSOR_AXIS_LABELS", "fr"),
        ("calibration.csv", "TENSOR_AXIS_SCORE_CALIBRATION", None)]
    assert out.score_calibration.transformation == "LOG" and out.score_calibration.default_score == 0.25
    assert out.score_threshold == 0.125
    assert back.file("README.txt") == bytes(range(256)) and back.file("nope") is None
    # A stored (uncompressed) zip appended to the flatbuffer, as TFLite Support writes it.
    with zipfile.ZipFile(BytesIO(written)) as z:
        assert {i.filename: i.compress_type for i in z.infolist()} == dict.fromkeys(dict(md.files), zipfile.ZIP_STORED)
    assert read_packed_files(written) == dict(md.files)
    # The interpreter ignores the trailing archive; rewriting replaces it instead of appending another.
    interp = Interpreter(model_content=written)
    interp.allocate_tensors()
    interp.invoke()
    again = populate_tflite_metadata(written, md)
    assert again == written
    plain = populate_tflite_metadata(written, _sample_metadata())
    assert read_packed_files(plain) == {} and read_tflite_metadata(plain).files == ()


def test_associated_files_round_trip_through_onnx_props():
    md = _with_files()
    back = from_onnx_props(to_onnx_props(md))
    assert dict(back.files) == dict(md.files)
    assert back.outputs[0] == md.outputs[0] and back.associated_files == md.associated_files


def test_associated_file_errors_are_typed():
    from dataclasses import replace

    from edge_embedder.metadata import AssociatedFile

    model = (REFERENCE / "ref_no_metadata_float.tflite").read_bytes()
    md = _with_files()
    with pytest.raises(MetadataError, match="not in md.files"):
        populate_tflite_metadata(model, replace(md, files={"labels.txt": b"x"}))
    with pytest.raises(MetadataError, match="not in md.files"):
        to_onnx_props(replace(md, files={}))
    with pytest.raises(MetadataError, match="type expected one of"):
        AssociatedFile("x.txt", "LABELS")
    with pytest.raises(MetadataError, match="plain file name"):
        AssociatedFile("dir/x.txt")
    with pytest.raises(MetadataError, match="unique"):
        replace(md, associated_files=[AssociatedFile("labels.txt")])
    # The flatbuffer names a file the archive lacks: a truncated or stripped file.
    written = populate_tflite_metadata(model, md)
    cut = written[: len(written) - 30]
    with pytest.raises(MetadataError):
        read_tflite_metadata(cut)
    props = to_onnx_props(md)
    del props["edge_embedder.file/labels.txt"]
    with pytest.raises(MetadataError, match="no edge_embedder.file/labels.txt property"):
        from_onnx_props(props)
