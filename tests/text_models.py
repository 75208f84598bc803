"""Small text models for the text contract and runtime tests, and the tiny CLIP conversions.

* :func:`onnx_text_model` builds a synthetic text-embedding ONNX file with
  ``onnx.helper`` (no torch, milliseconds): int ids ``[1 or batch, L]`` ->
  ``Cast`` -> ``MatMul`` -> ``[.., N]``, with the real CLIP tokenizer in its
  ``metadata_props`` as the converters write it; every part can be broken
  on purpose.
* :data:`README_COMMANDS` are the commands of docs/text.md that build the tiny
  CLIP pair (``tests/conftest.py`` runs them once per session).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .conftest import ROOT

TOKENIZER_JSON = ROOT / "converters" / "clip_tokenizer" / "tokenizer.json"
TOKENIZER_ENTRY = {"file": "tokenizer.json", "max_length": 77, "bos_id": 49406, "eos_id": 49407, "pad_id": 49407,
                   "lowercase": False, "pooling": "first_eos"}

#: docs/text.md's "A tiny CLIP pair" commands, in order (cwd: the folder the files go to).
README_COMMANDS = [
    ["tiny_clip", "tiny-clip"],
    ["convert", "--arch", "clip", "--tower", "image", "--model", "tiny-clip", "-o", "tiny-clip-image.tflite"],
    ["convert", "--arch", "clip", "--tower", "text", "--model", "tiny-clip", "-o", "tiny-clip-text.tflite"],
]


def onnx_text_model(
    path: Path,
    *,
    length: int = 77,
    dim: int = 8,
    dtype: Any = np.int32,
    batch: Any = 1,
    out_shape: Optional[list] = None,
    extra_input: bool = False,
    entry: Optional[dict] = None,
    custom: Optional[dict[str, bytes]] = None,
    files: Optional[dict[str, bytes]] = None,
    metadata: bool = True,
    seed: int = 0,
) -> Path:
    """Write a synthetic text model; ``entry`` / ``custom`` / ``files`` override the tokenizer metadata."""
    from onnx import TensorProto, helper, numpy_helper

    from edge_embedder.metadata import TOKENIZER_KEY, AssociatedFile, ModelMetadata, TensorMetadata, to_onnx_props

    elem = {np.int32: TensorProto.INT32, np.int64: TensorProto.INT64, np.float32: TensorProto.FLOAT}[dtype]
    seq = length if length > 0 else "seq"
    w = np.random.default_rng(seed).normal(size=(abs(length) or 1, dim)).astype(np.float32) / 1e4
    inputs = [helper.make_tensor_value_info("input_ids", elem, [batch, seq])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("attention_mask", elem, [batch, seq]))
    out = helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, out_shape or [batch, dim])
    nodes = [helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["ids_f", "w"], ["mm"])]
    if out_shape is not None and len(out_shape) == 3:
        nodes.append(helper.make_node("Unsqueeze", ["mm", "axes"], ["text_embeds"]))
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([1], np.int64), "axes")]
    else:
        nodes.append(helper.make_node("Identity", ["mm"], ["text_embeds"]))
        inits = [numpy_helper.from_array(w, "w")]
    graph = helper.make_graph(nodes, "text", inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        tok = TOKENIZER_JSON.read_bytes()
        e = dict(TOKENIZER_ENTRY, max_length=abs(length)) if entry is None else entry
        cm = {TOKENIZER_KEY: json.dumps(e).encode()}
        cm.update(custom or {})
        fl = {"tokenizer.json": tok} if files is None else files
        md = ModelMetadata(
            name="synthetic text model",
            inputs=[TensorMetadata(name="input_ids", associated_files=[AssociatedFile(n) for n in fl])]
            + ([TensorMetadata(name="attention_mask")] if extra_input else []),
            outputs=[TensorMetadata(name="text_embeds", content="feature")],
            custom_metadata=list(cm.items()),
            files=list(fl.items()),
        )
        for k, v in to_onnx_props(md).items():
            model.metadata_props.add(key=k, value=v)
    path.write_bytes(model.SerializeToString())
    return path
