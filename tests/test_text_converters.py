"""Converting CLIP text towers (``edge-embedder convert --arch clip --tower text``): every format and quantization.

The tiny random CLIP checkpoint is the README's (conftest's ``clip_pair``,
CLIP's real vocabulary); each (format, quantization) is converted once per
session from one loaded checkpoint (``clip_file``), so the float32 export
runs once per format. A legacy checkpoint (``eos_token_id == 2``, argmax
pooling) is converted once in this module.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("litert_torch")
pytest.importorskip("tokenizers")
pytest.importorskip("onnxruntime")

from edge_embedder import BaseOptions, TextEmbedder, TextEmbedderOptions, inspect_model  # noqa: E402
from edge_embedder.cli import main  # noqa: E402
from edge_embedder.metadata import (  # noqa: E402
    EMBEDDING_SPACE_KEY,
    LOGIT_SCALE_KEY,
    TOKENIZER_KEY,
    from_onnx_props,
    read_tflite_metadata,
)

pytestmark = pytest.mark.slow

QUANTS = ("none", "fp16", "dynamic-int8", "int8")
FORMATS = ("tflite", "onnx")
FLOORS = {"none": 0.9999, "fp16": 0.999, "dynamic-int8": 0.99, "int8": 0.9}  # the floors
BOUNDARIES = (8, 12, 16, 24, 32, 48, 64, 77)
CAPTIONS = ("seed: cat", "seed: dog", "seed: car", "short", "punctuation", "unicode", "long", "empty",
            *(f"{n} ids" for b in BOUNDARIES for n in (b, b + 1)))


def _metadata(path):
    if path.suffix == ".onnx":
        import onnx

        return from_onnx_props({p.key: p.value for p in onnx.load(str(path)).metadata_props})
    return read_tflite_metadata(path.read_bytes())


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("edge-embedder: error")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_quantization(clip_file, fmt, quant):
    path = clip_file("text", fmt, quant)
    contract = inspect_model(str(path))["contract"]
    assert contract["ok"] and contract["task"] == "text_embedder", contract
    if fmt == "tflite":  # one signature per shape, the shortest that holds a text runs it
        assert contract["input"] == {"sequence_length": 77, "dtype": "int32", "lengths": list(BOUNDARIES),
                                     "batch": [[8, 16], [8, 32]]}
    else:
        assert contract["input"] == {"sequence_length": 77, "dtype": "int32", "lengths": "any 2..77 (dynamic axis)",
                                     "batch": "any (dynamic axis)"}
    assert contract["heads"] == [{"head_index": 0, "head_name": "text_embeds", "size": 16, "dtype": "float32"}]
    report = json.loads(path.with_name(path.name + ".parity.json").read_text())
    assert report["passed"] and report["task"] == "text-embedding" and report["floor"] == FLOORS[quant]
    assert report["format"] == fmt and report["quantization"] == quant
    assert [r["name"] for r in report["texts"]] == list(CAPTIONS)
    assert all(r["ids_equal"] and r["cosine"] >= FLOORS[quant] for r in report["texts"])
    for n in (n for b in BOUNDARIES for n in (b, b + 1)):  # both sides of every bucket boundary
        row = report["texts"][CAPTIONS.index(f"{n} ids")]
        assert row["tokens"] == min(n, 77) and row["truncated"] == (n > 77), row
    assert report["batch"]["passed"] and report["batch"]["min_cosine"] >= FLOORS[quant]
    if quant in ("none", "fp16"):  # quantized activations are scaled per call (dynamic) or per subgraph (int8)
        assert report["batch"]["max_abs_diff_vs_embed"] < 1e-5
    long = report["texts"][CAPTIONS.index("long")]
    assert long["truncated"] and long["tokens"] == 77
    assert report["texts"][CAPTIONS.index("empty")]["tokens"] == 2
    assert report["embedding_space"].startswith("weights-sha256:")
    assert not list(path.parent.glob(".*.partial")), "temporary files left behind"


def test_quantized_files_are_smaller(clip_file):
    size = {q: clip_file("text", "tflite", q).stat().st_size for q in QUANTS}
    tokenizer = 3_642_074  # the packed tokenizer.json
    assert size["fp16"] - tokenizer < 0.6 * (size["none"] - tokenizer)  # token table included
    assert size["dynamic-int8"] - tokenizer < 0.4 * (size["none"] - tokenizer)
    assert size["int8"] - tokenizer < 0.4 * (size["none"] - tokenizer)


def test_metadata_carries_the_tokenizer_space_and_scale(clip_pair, clip_file):
    from edge_embedder.convert.hf import weights_space_id
    from transformers import CLIPModel, CLIPTokenizerFast

    ckpt = str(clip_pair["checkpoint"])
    model = CLIPModel.from_pretrained(ckpt)
    space = weights_space_id(model)
    tok_json = CLIPTokenizerFast.from_pretrained(ckpt).backend_tokenizer.to_str().encode()
    files = {(tower, fmt): clip_file(tower, fmt, "none") for tower in ("image", "text") for fmt in FORMATS}
    for (tower, fmt), path in files.items():
        md = _metadata(path)
        assert md.custom_text(EMBEDDING_SPACE_KEY) == space, (tower, fmt)
        assert md.custom_json(LOGIT_SCALE_KEY) == pytest.approx(float(model.logit_scale.detach().exp()), rel=1e-6)
        if tower == "text":
            assert md.file("tokenizer.json") == tok_json
            assert md.inputs[0].associated_files[0].name == "tokenizer.json"
            entry = md.custom_json(TOKENIZER_KEY)
            known = entry.pop("known_encodings")  # ids of a few texts, re-encoded at load (tests/test_robust_text.py)
            assert known[0] == ["a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407]]
            assert entry == {"file": "tokenizer.json", "max_length": 77, "bos_id": 49406,
                             "eos_id": 49407, "pad_id": 49407, "lowercase": False, "pooling": "first_eos"}
            assert md.outputs[0].name == "text_embeds" and "CLIP text embedder" in md.name
            assert md.custom_json("edge_embedder.source")["task"] == "text-embedding"


def test_onnx_has_dynamic_batch_and_sequence_axes(clip_file):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(clip_file("text", "onnx", "none")), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "input_ids" and inp.type == "tensor(int32)"
    assert not isinstance(inp.shape[0], int) and not isinstance(inp.shape[1], int)
    with TextEmbedder.create_from_model_path(clip_file("text", "onnx", "none")) as e:
        ids = np.stack([x.ids for x in e.tokenizer.encode_batch(["a photo of a cat", "", "dog " * 90])])
    batch = sess.run(None, {"input_ids": ids})[0]
    single = np.concatenate([sess.run(None, {"input_ids": ids[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_space_id_is_a_hash_of_every_weight(clip_pair):
    import torch
    from edge_embedder.convert.hf import weights_space_id
    from transformers import CLIPModel

    a = CLIPModel.from_pretrained(str(clip_pair["checkpoint"]))
    b = CLIPModel.from_pretrained(str(clip_pair["checkpoint"]))
    assert weights_space_id(a) == weights_space_id(b)
    with torch.no_grad():
        b.text_model.encoder.layers[0].mlp.fc1.weight[0, 0] += 1e-3  # fine-tune one text weight
    assert weights_space_id(a) != weights_space_id(b)


def test_one_tower_checkpoint_warns_about_the_space(clip_pair, tmp_path):
    from edge_embedder.convert.architectures import clip_contrastive
    from transformers import CLIPTextModelWithProjection

    text_only = CLIPTextModelWithProjection.from_pretrained(str(clip_pair["checkpoint"]))
    space, scale, bias, warnings = clip_contrastive(text_only, "clip_text_model", "text")
    assert space.startswith("weights-sha256:") and scale is None and bias is None
    assert len(warnings) == 1 and "--embedding-space" in warnings[0]


def test_text_only_checkpoint(clip_pair, tmp_path):
    """A CLIPTextModelWithProjection checkpoint converts too (reference: its own text_embeds), with the warning."""
    import shutil

    from edge_embedder.convert import convert
    from transformers import CLIPTextModelWithProjection

    ckpt = tmp_path / "text-only"
    CLIPTextModelWithProjection.from_pretrained(str(clip_pair["checkpoint"])).save_pretrained(ckpt)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(clip_pair["checkpoint"] / f, ckpt / f)
    messages: list[str] = []
    result = convert("clip", str(ckpt), output=tmp_path / "t.onnx", task="text-embedding", progress=messages.append)
    assert result.report["passed"] and result.report["logit_scale"] is None
    assert any(m.startswith("warning:") and "only the text tower" in m for m in messages)
    with TextEmbedder.create_from_model_path(tmp_path / "t.onnx") as e, \
            TextEmbedder.create_from_model_path(clip_pair["text"]) as full:
        np.testing.assert_allclose(e.embed("a photo of a cat").embeddings[0].embedding,
                                   full.embed("a photo of a cat").embeddings[0].embedding, atol=1e-4)
        assert e.embedding_space_id != full.embedding_space_id and e.logit_scale is None


def test_embedding_space_override(clip_file, tmp_path):
    from edge_embedder.convert import convert

    out = tmp_path / "text.tflite"
    result = convert("clip", None, output=out, task="text-embedding", loaded=clip_file.loaded("text"),
                     embedding_space="my-clip-space", progress=lambda m: None)
    assert result.report["embedding_space"] == "my-clip-space"
    with TextEmbedder.create_from_model_path(out) as e:
        assert e.embedding_space_id == "my-clip-space"


def test_text_parity_failure_lists_every_caption_and_keeps_no_model(clip_file, tmp_path):
    from edge_embedder.convert import convert
    from edge_embedder.convert.errors import ParityError

    out = tmp_path / "text.onnx"
    with pytest.raises(ParityError) as info:
        convert("clip", None, output=out, task="text-embedding", loaded=clip_file.loaded("text"), min_cosine=1.5,
                progress=lambda m: None)
    assert len(info.value.failures) == len(CAPTIONS) and f"parity failed on {len(CAPTIONS)} text(s)" in str(info.value)
    assert not out.exists() and not list(tmp_path.glob("*.onnx"))
    assert json.loads((tmp_path / "text.onnx.parity.json").read_text())["passed"] is False


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """A checkpoint whose text config has eos_token_id == 2 (argmax pooling), converted to .tflite."""
    from edge_embedder.convert import convert, tiny_clip

    root = tmp_path_factory.mktemp("legacy")
    ckpt = tiny_clip.build(root / "legacy-clip", seed=5, legacy_eos=True)
    out = root / "legacy_text.tflite"
    convert("clip", str(ckpt), output=out, task="text-embedding", progress=lambda m: None)
    return ckpt, out


def test_argmax_pooling_checkpoint(legacy):
    """Configs from before transformers PR #24773 pool at argmax(ids); padding with EOS keeps the first maximum."""
    import torch
    from transformers import CLIPModel, CLIPTokenizerFast

    ckpt, path = legacy
    report = json.loads(path.with_name(path.name + ".parity.json").read_text())
    assert report["passed"] and all(r["ids_equal"] and r["cosine"] >= 0.9999 for r in report["texts"])
    model, tok = CLIPModel.from_pretrained(str(ckpt)).eval(), CLIPTokenizerFast.from_pretrained(str(ckpt))
    assert model.config.text_config.eos_token_id == 2
    texts = ["a photo of a cat", "", "dog " * 90]
    with torch.no_grad():
        want = model.get_text_features(**tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt"))
    want = (want if isinstance(want, torch.Tensor) else want.pooler_output).numpy()
    opts = TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path), num_threads=2))
    with TextEmbedder.create_from_options(opts) as e:
        assert e.model_spec.tokenizer.pooling == "argmax" and e.model_spec.tokenizer.pad_id == 49407
        for text, ref in zip(texts, want):
            np.testing.assert_allclose(e.embed(text).embeddings[0].embedding, ref, atol=1e-4)
        ids = e.tokenizer.encode("a photo of a cat").ids
        outs = []
        for pad in (49407, 0, 320):
            x = ids.copy()
            x[7:] = pad

            def write(buf, x=x):
                buf[0, :] = x

            outs.append(e.backend.run(write)[0].ravel())
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    np.testing.assert_allclose(outs[0], outs[2], atol=1e-6)


# --------------------------------------------------------------------------- #
# Bad input: one line, exit code, no file
# --------------------------------------------------------------------------- #


def test_tower_and_task_must_agree(clip_pair, tmp_path, capsys):
    out = tmp_path / "x.tflite"
    args = ["convert", "--arch", "clip", "--model", str(clip_pair["checkpoint"]), "-o", str(out)]
    assert main([*args, "--tower", "text", "--task", "image-embedding"]) == 2
    assert "--tower text means --task text-embedding" in _one_line_error(capsys)
    assert main([*args, "--task", "speech"]) == 2
    assert "unknown task 'speech'" in _one_line_error(capsys)
    assert main(["convert", "--arch", "vit", "--tower", "text", "--model", "x", "-o", str(out)]) == 2
    assert "unknown architecture 'vit' for text-embedding: expected one of clip" in _one_line_error(capsys)
    assert main([*args, "--tower", "text", "--quantize", "int8", "--calibration-images", str(tmp_path)]) == 2
    assert "--calibration-images is for image towers" in _one_line_error(capsys)
    assert not out.exists()


def test_checkpoint_without_tokenizer(clip_pair, tmp_path, capsys):
    import shutil

    broken = tmp_path / "no-tokenizer"
    shutil.copytree(clip_pair["checkpoint"], broken)
    (broken / "tokenizer.json").unlink()
    out = tmp_path / "text.tflite"
    assert main(["convert", "--arch", "clip", "--tower", "text", "--model", str(broken), "-o", str(out)]) == 3
    line = _one_line_error(capsys)
    assert "missing tokenizer.json (or vocab.json)" in line and "its tokenizer" in line
    assert not out.exists()
