"""ONNX export and quantization helpers (torch.onnx dynamo exporter, ONNX Runtime).

* :func:`export_onnx` -- ``torch.onnx.export(dynamo=True)`` with a dynamic batch
  axis (the dynamo exporter needs a batch-2 sample for that: a batch-1 sample
  fails with "Invalid ranges [2:1]") and ``external_data=False`` (one file).
  Output names are chosen by the caller and must not collide with internal
  node names (naming CLIP's output ``embedding`` produced a file ONNX Runtime
  refused: "Duplicate definition of name"), so every file is loaded back by
  :func:`check_loads` before it is returned.
* :func:`fp16_weights` -- large float32 initializers stored as float16 with a
  Cast back to float32 (float16 weights, float32 compute and I/O; the ONNX
  counterpart of LiteRT's fp16-weights recipe, no extra dependency).
* :func:`quantize_dynamic_int8` / :func:`quantize_static_int8` --
  ``onnxruntime.quantization`` (dynamic: int8 weights, activations at run
  time; static: QDQ on MatMul / Gemm / Conv, int8 per-channel weights, uint8
  activations, calibrated; the uint8 input is cast and normalized inside).
* :func:`set_metadata_props` -- ``edge_embedder.metadata.to_onnx_props``
  written into ``metadata_props``.

onnx / onnxruntime / torch are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edge_embedder.errors import first_line

from .errors import ExportError

__all__ = [
    "export_onnx",
    "fp16_weights",
    "quantize_dynamic_int8",
    "quantize_static_int8",
    "set_metadata_props",
    "check_loads",
    "classification_head_nodes",
]


def export_onnx(module: Any, sample: Any, input_name: str, output_name: str, *, opset: int = 18,
                seq_axis: Optional[tuple[int, int]] = None) -> bytes:
    """Export ``module`` (one input, one output) with a dynamic batch axis; return the bytes.

    ``seq_axis=(min, max)``: axis 1 is dynamic too (text towers' sequence axis);
    the sample's axis 1 must lie strictly inside, not at ``max`` (the exporter
    specialises a sample size equal to a bound it sees in the graph).
    """
    import torch

    if sample.shape[0] < 2:
        sample = torch.cat([sample, sample], 0)  # the dynamo exporter needs batch >= 2 for a dynamic axis
    batch = torch.export.Dim("batch", min=1, max=1024)
    axes: dict[int, Any] = {0: batch}
    if seq_axis is not None:
        axes[1] = torch.export.Dim("seq", min=seq_axis[0], max=seq_axis[1])
    with tempfile.TemporaryDirectory(prefix="onnx_export_") as tmp, contextlib.redirect_stdout(sys.stderr):
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(
            module.eval(),
            (sample,),
            path,
            dynamo=True,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=(axes,),
            external_data=False,
            opset_version=opset,
            verbose=False,
        )
        return Path(path).read_bytes()


def set_metadata_props(model: bytes, props: Mapping[str, str]) -> bytes:
    import onnx

    m = onnx.load_from_string(model)
    keep = [p for p in m.metadata_props if p.key not in props]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    return m.SerializeToString()


def fp16_weights(model: bytes, min_elements: int = 1024) -> bytes:
    """Store float32 initializers with >= ``min_elements`` values as float16 + Cast."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load_from_string(model)
    g = m.graph
    casts = []
    new_inits = []
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            arr = numpy_helper.to_array(init).astype(np.float16)
            half_name = init.name + "__fp16"
            new_inits.append(numpy_helper.from_array(arr, half_name))
            casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast_fp32"))
        else:
            new_inits.append(init)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return m.SerializeToString()


def _with_files(model: bytes, fn) -> bytes:
    with tempfile.TemporaryDirectory(prefix="onnx_quant_") as tmp:
        src, dst = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        Path(src).write_bytes(model)
        with contextlib.redirect_stdout(sys.stderr):
            fn(src, dst)
        return Path(dst).read_bytes()


def quantize_dynamic_int8(model: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    return _with_files(model, lambda s, d: quantize_dynamic(s, d, weight_type=QuantType.QInt8))


#: Ops given static int8 (QDQ) by :func:`quantize_static_int8`: the weight-bearing ones.
#: Quantizing every op (LayerNorm, Softmax, GELU, Add too) cost CLIP ViT-B/32 a cosine
#: of 0.897 vs fp32; MatMul / Gemm / Conv only gave 0.9996 at the same latency.
STATIC_INT8_OPS = ("MatMul", "Gemm", "Conv")


def quantize_static_int8(
    model: bytes,
    input_name: str,
    samples: Sequence[np.ndarray],
    op_types: Sequence[str] | None = STATIC_INT8_OPS,
    exclude_head: bool = False,
) -> bytes:
    """QDQ static int8 calibrated on ``samples`` (arrays as the model takes them).

    int8 per-channel weights and uint8 per-tensor activations (MinMax
    calibration) for ``op_types`` (None: every op ONNX Runtime can quantize).
    ``exclude_head``: classifiers keep their head (the last linear layer and its
    activation, :func:`classification_head_nodes`) in float.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(samples)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    return _with_files(
        model,
        lambda s, d: quantize_static(
            s,
            d,
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_exclude=classification_head_nodes(model) if exclude_head else None,
        ),
    )


def classification_head_nodes(model: bytes) -> list[str]:
    """Names of the nodes from the graph output back to the head's linear layer (inclusive).

    Walks back from the single output through Softmax / Sigmoid, Add (a bias)
    and Reshape / Flatten / Squeeze to the first Gemm or MatMul. Raises
    ``ExportError`` when there is no such linear layer.
    """
    import onnx

    g = onnx.load_from_string(model).graph
    producer = {o: n for n in g.node for o in n.output}
    name = g.output[0].name
    found: list[str] = []
    while name in producer:
        node = producer[name]
        found.append(node.name)
        if node.op_type in ("Gemm", "MatMul"):
            return found
        if node.op_type not in ("Softmax", "Sigmoid", "Add", "Reshape", "Flatten", "Squeeze", "Identity", "Cast"):
            break
        name = node.input[0] if node.op_type != "Add" else next(
            (i for i in node.input if i in producer and producer[i].op_type in ("Gemm", "MatMul")), node.input[0])
    raise ExportError(f"no linear classification head before the ONNX output (walked {found})")


def check_loads(model: bytes, input_dtype: Any, shape: Sequence[int]) -> list[str]:
    """Load ``model`` in ONNX Runtime and run it once; return its output names.

    Raises ``ExportError`` when the file does not load or run.
    """
    import onnxruntime as ort

    try:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        sess.run(None, {name: np.zeros(shape, input_dtype)})
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportError(f"the exported ONNX file does not load in ONNX Runtime: {first_line(exc)}") from None
    return [o.name for o in sess.get_outputs()]
