"""Small ONNX models that misbehave on purpose, for the robustness tests (built with onnx.helper in milliseconds).

* :func:`image_model`: uint8 ``[B, 8, 8, 3]`` pixels -> (optional ``Log``) -> ``MatMul`` with the
  given weights, one output per weight matrix: NaN / infinite weights give NaN / infinite outputs,
  and with ``log=True`` a black pixel (log 0 = -inf) makes the output non-finite for that image only.
* :func:`text_model`: int32 token ids ``[B, L]`` -> ``Gather`` from a token table of ``rows`` rows ->
  mean over the sequence: a table smaller than the tokenizer's vocabulary fails at invoke (as a real
  tower does), and NaN rows make the texts that use those tokens NaN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .text_models import TOKENIZER_ENTRY, TOKENIZER_JSON

SIDE = 8
PIXELS = SIDE * SIDE * 3


def _save(model: Any, path: Path, md: Any) -> Path:
    from edge_embedder.metadata import to_onnx_props

    if md is not None:
        for k, v in to_onnx_props(md).items():
            model.metadata_props.add(key=k, value=v)
    path.write_bytes(model.SerializeToString())
    return path


def image_model(path: Path, weights: Sequence[np.ndarray], *, log: bool = False, batch: Any = "batch",
                labels: Optional[Sequence[Optional[list[str]]]] = None, calibration: Optional[tuple[str, str]] = None,
                softmax: bool = False) -> Path:
    """An image model with one output per ``weights[i]`` (shape ``[192, N_i]``).

    ``labels[i]``: label names of output i (a classifier); ``calibration``: (transformation, CSV) of output 0.
    """
    from onnx import TensorProto, helper, numpy_helper

    from edge_embedder.metadata import AssociatedFile, ModelMetadata, ScoreCalibration, TensorMetadata

    nodes = [helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT)]
    src = "x"
    if log:
        nodes.append(helper.make_node("Log", ["x"], ["logx"]))
        src = "logx"
    nodes.append(helper.make_node("Reshape", [src, "shape"], ["flat"]))
    inits = [numpy_helper.from_array(np.array([-1, PIXELS], np.int64), "shape")]
    outputs, tensors, files = [], [], []
    for i, w in enumerate(weights):
        w = np.asarray(w, np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        name = f"head{i}"
        if softmax:
            nodes.append(helper.make_node("MatMul", ["flat", f"w{i}"], [f"logits{i}"]))
            nodes.append(helper.make_node("Softmax", [f"logits{i}"], [name], axis=-1))
        else:
            nodes.append(helper.make_node("MatMul", ["flat", f"w{i}"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, w.shape[1]]))
        assoc, cal = [], None
        if labels is not None and labels[i] is not None:
            assoc.append(AssociatedFile(f"labels{i}.txt", "TENSOR_AXIS_LABELS", locale="en"))
            files.append((f"labels{i}.txt", ("\n".join(labels[i]) + "\n").encode()))
        if calibration is not None and i == 0:
            assoc.append(AssociatedFile("calibration.csv", "TENSOR_AXIS_SCORE_CALIBRATION"))
            files.append(("calibration.csv", calibration[1].encode()))
            cal = ScoreCalibration(calibration[0], 0.0)
        tensors.append(TensorMetadata(name=name, content="feature", associated_files=assoc, score_calibration=cal))
    graph = helper.make_graph(nodes, "image", [helper.make_tensor_value_info("image", TensorProto.UINT8,
                                                                             [batch, SIDE, SIDE, 3])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    md = ModelMetadata(name="robustness test image model", inputs=[TensorMetadata(name="image", content="image")],
                       outputs=tensors, files=files)
    return _save(model, path, md)


def text_model(path: Path, *, rows: int = 49408, dim: int = 4, nan_ids: Sequence[int] = (),
               tokenizer_json: Optional[bytes] = None, entry: Optional[dict] = None, length: int = 77) -> Path:
    """A text model whose token table has ``rows`` rows (rows ``nan_ids`` are NaN); CLIP's tokenizer inside."""
    from onnx import TensorProto, helper, numpy_helper

    from edge_embedder.metadata import TOKENIZER_KEY, AssociatedFile, ModelMetadata, TensorMetadata

    table = np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float32)
    table[list(nan_ids)] = np.nan
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["emb"], axis=0),
             helper.make_node("ReduceMean", ["emb"], ["text_embeds"], axes=[1], keepdims=0)]
    graph = helper.make_graph(
        nodes, "text", [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", length])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", dim])],
        initializer=[numpy_helper.from_array(table, "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    tok = tokenizer_json if tokenizer_json is not None else TOKENIZER_JSON.read_bytes()
    e = dict(TOKENIZER_ENTRY, max_length=length) if entry is None else entry
    md = ModelMetadata(
        name="robustness test text model",
        inputs=[TensorMetadata(name="input_ids", associated_files=[AssociatedFile("tokenizer.json")])],
        outputs=[TensorMetadata(name="text_embeds", content="feature")],
        custom_metadata=[(TOKENIZER_KEY, json.dumps(e).encode())],
        files=[("tokenizer.json", tok)],
    )
    return _save(model, path, md)


def tokenizer_json(**changes: Any) -> bytes:
    """CLIP's tokenizer.json with ``changes`` applied: ``merges=[]``, ``added_id=N`` (a special token
    added; ``tokenizers`` numbers it after the vocabulary), ``vocab_id=(token, N)`` (a vocabulary entry
    renumbered), ``lowercase=False`` (no lowercasing normalizer)."""
    d = json.loads(TOKENIZER_JSON.read_text())
    if "merges" in changes:
        d["model"]["merges"] = changes["merges"]
    if "added_id" in changes:
        d["added_tokens"].append({"id": changes["added_id"], "content": "<|extra|>", "single_word": False,
                                  "lstrip": False, "rstrip": False, "normalized": False, "special": True})
    if "vocab_id" in changes:
        token, new_id = changes["vocab_id"]
        d["model"]["vocab"][token] = new_id
    if changes.get("lowercase") is False:
        d["normalizer"] = {"type": "Sequence", "normalizers": [n for n in d["normalizer"]["normalizers"]
                                                                if n.get("type") != "Lowercase"]}
    return json.dumps(d).encode()


def gather_image_model(path: Path, rows: int = 100, dim: int = 4, batch: Any = "batch") -> Path:
    """An image model that uses the pixel values as indices into a table of ``rows`` rows: an image with a
    pixel >= ``rows`` makes the interpreter fail at run time (its own exception type)."""
    from onnx import TensorProto, helper, numpy_helper

    from edge_embedder.metadata import ModelMetadata, TensorMetadata

    table = np.random.default_rng(0).normal(size=(rows, dim)).astype(np.float32)
    nodes = [helper.make_node("Cast", ["image"], ["idx"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["idx", "shape"], ["flat"]),
             helper.make_node("Gather", ["table", "flat"], ["rows"], axis=0),
             helper.make_node("ReduceMean", ["rows"], ["head0"], axes=[1], keepdims=0)]
    graph = helper.make_graph(
        nodes, "gather", [helper.make_tensor_value_info("image", TensorProto.UINT8, [batch, SIDE, SIDE, 3])],
        [helper.make_tensor_value_info("head0", TensorProto.FLOAT, [batch, dim])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([-1, PIXELS], np.int64),
                                                                                      "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    md = ModelMetadata(name="gather", inputs=[TensorMetadata(name="image", content="image")],
                       outputs=[TensorMetadata(name="head0", content="feature")])
    return _save(model, path, md)
