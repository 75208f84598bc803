"""FLOPs of a model, counted from its graph, and the data type its math runs in.

Only the multiply-accumulate ops are counted (2 FLOPs per MAC): they are
>95% of the arithmetic of CNNs and transformers, and they are what the
machine's measured matmul peak (:mod:`edge_embedder.bench.peak`) is comparable with.
Element-wise ops, softmax, normalization and pooling are ignored, so the
figures are a slight undercount.

TFLite: ``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED``,
``BATCH_MATMUL``, ``TRANSPOSE_CONV``, shapes from the tensor table of an
interpreter created without delegates (the XNNPACK delegate would hide the
nodes). ONNX: ``Conv``, ``MatMul``, ``Gemm``, ``MatMulInteger``,
``QLinearMatMul``, ``ConvInteger``, ``QLinearConv`` after ONNX shape inference.

The compute data type is ``int8`` when the weights of the counted ops are
mostly int8 (full-integer and dynamic-range int8 models both multiply in int8),
else ``fp32`` (float16 *weights* are dequantized and multiplied in fp32 on
CPUs without fp16 arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["GraphFlops", "FlopsUnavailable", "count_flops"]


class FlopsUnavailable(Exception):
    """The graph's FLOPs cannot be counted; the message says why (the report shows it for the empty column)."""


@dataclass(frozen=True)
class GraphFlops:
    flops: int  # 2 x multiply-accumulates of the counted ops
    compute_dtype: str  # "fp32" or "int8"
    counted_ops: int
    source: str  # "tflite graph" / "onnx graph"

    def to_json(self) -> dict:
        return {"flops": self.flops, "gflops": self.flops / 1e9, "compute_dtype": self.compute_dtype,
                "counted_ops": self.counted_ops, "source": self.source}


def count_flops(path: str | Path) -> GraphFlops:
    """FLOPs of a ``.tflite`` or ``.onnx`` file.

    Raises:
      FlopsUnavailable: the file cannot be read or parsed, the parser is not installed, or the graph
        has no op this module counts (the message says which).
    """
    from edge_embedder.errors import first_line

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FlopsUnavailable(f"cannot read {Path(path).name}: {exc.strerror or exc}") from None
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return _tflite_flops(data)
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise FlopsUnavailable("counting an ONNX graph needs the onnx package (pip install onnx)") from None
    try:
        return _onnx_flops(data)
    except FlopsUnavailable:
        raise
    except Exception as exc:
        raise FlopsUnavailable(f"not a TFLite or ONNX graph that could be parsed ({first_line(exc)})") from None


# -- TFLite ---------------------------------------------------------------------


def _tflite_flops(data: bytes) -> GraphFlops:
    from edge_embedder.errors import first_line

    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise FlopsUnavailable("counting a TFLite graph needs ai-edge-litert's op view (not installed)") from None
    try:
        interp = Interpreter(
            model_content=data,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        ops = interp._get_ops_details()  # noqa: SLF001 (the only op-level view LiteRT exposes)
    except Exception as exc:
        raise FlopsUnavailable(f"LiteRT cannot read the graph ({first_line(exc)})") from None

    def shape(i: int) -> tuple[int, ...]:
        return tuple(int(v) for v in tensors[i]["shape"])

    def dtype(i: int) -> np.dtype:
        return np.dtype(tensors[i]["dtype"])

    # A weight fed through DEQUANTIZE (fp16 / weight-only files) keeps the source dtype.
    dequant_src = {}
    for op in ops:
        if op["op_name"] == "DEQUANTIZE" and len(op["inputs"]) and len(op["outputs"]):
            dequant_src[int(op["outputs"][0])] = int(op["inputs"][0])

    total = 0
    counted = 0
    int8_flops = 0
    for op in ops:
        name = op["op_name"]
        ins = [int(i) for i in op["inputs"]]
        outs = [int(i) for i in op["outputs"]]
        if not outs or any(i not in tensors for i in ins if i >= 0) or outs[0] not in tensors:
            continue
        out = shape(outs[0])
        macs = 0
        if name == "CONV_2D" and len(ins) >= 2:
            w = shape(ins[1])  # [Co, Kh, Kw, Ci]
            macs = _prod(out) * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D" and len(ins) >= 2:
            w = shape(ins[1])  # [1, Kh, Kw, Co]
            macs = _prod(out) * w[1] * w[2]
        elif name == "TRANSPOSE_CONV" and len(ins) >= 3:
            w = shape(ins[1])  # [Co, Kh, Kw, Ci]; input is ins[2]
            macs = _prod(shape(ins[2])) * w[0] * w[1] * w[2]
        elif name == "FULLY_CONNECTED" and len(ins) >= 2:
            w = shape(ins[1])  # [O, I]
            macs = _prod(out) * w[-1]
        elif name == "BATCH_MATMUL" and len(ins) >= 2:
            # A [bA.., M, K] x B [bB.., K, N] -> out [bO.., M, N] (adjoint flags are not exposed, so K
            # comes from the sizes: a * b * bO / (o * bA * bB) = K^2, broadcasting included)
            sa, sb = shape(ins[0]), shape(ins[1])
            a, b, o = _prod(sa), _prod(sb), max(_prod(out), 1)
            ba, bb, bo = _prod(sa[:-2]), _prod(sb[:-2]), _prod(out[:-2])
            k = math.sqrt(a * b * bo / (o * ba * bb)) if a and b and ba and bb else 0
            macs = int(round(o * k))
        if not macs:
            continue
        counted += 1
        total += macs
        weight = ins[1] if len(ins) >= 2 else -1
        wd = dtype(dequant_src.get(weight, weight)) if weight in tensors else np.dtype(np.float32)
        if wd in (np.dtype(np.int8), np.dtype(np.uint8)) and name != "BATCH_MATMUL":
            int8_flops += macs
        elif name == "BATCH_MATMUL" and dtype(ins[0]) in (np.dtype(np.int8), np.dtype(np.uint8)):
            int8_flops += macs
    if not counted:
        raise FlopsUnavailable("the graph has no conv / fully-connected / matmul op to count")
    compute = "int8" if int8_flops * 2 > total else "fp32"
    return GraphFlops(2 * total, compute, counted, "tflite graph")


def _prod(shape) -> int:
    p = 1
    for v in shape:
        p *= int(v)
    return p


# -- ONNX -----------------------------------------------------------------------


def _onnx_flops(data: bytes) -> GraphFlops:
    import onnx
    from onnx import shape_inference

    model = onnx.load_from_string(data)
    try:
        model = shape_inference.infer_shapes(model)
    except Exception:
        pass
    g = model.graph
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, int] = {}

    def take(vi) -> None:
        t = vi.type.tensor_type
        dims = []
        for d in t.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else 1)  # dynamic axes (batch): 1
        shapes[vi.name] = tuple(dims)
        dtypes[vi.name] = t.elem_type

    for vi in list(g.input) + list(g.output) + list(g.value_info):
        take(vi)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
        dtypes[init.name] = init.data_type
    int8_types = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}

    total = counted = int8_flops = 0
    for node in g.node:
        op = node.op_type
        if op not in ("Conv", "ConvInteger", "QLinearConv", "MatMul", "MatMulInteger", "QLinearMatMul", "Gemm"):
            continue
        if not node.output or node.output[0] not in shapes:
            continue
        out = shapes[node.output[0]]
        macs = 0
        if op in ("Conv", "ConvInteger"):
            w = shapes.get(node.input[1])
            if w:
                macs = _prod(out) * _prod(w[1:])  # [Co, Ci/groups, kh, kw]
            weight = node.input[1]
        elif op == "QLinearConv":
            w = shapes.get(node.input[3])
            if w:
                macs = _prod(out) * _prod(w[1:])
            weight = node.input[3]
        elif op == "QLinearMatMul":
            a = shapes.get(node.input[0])
            if a:
                macs = _prod(out) * a[-1]
            weight = node.input[3]
        else:  # MatMul, MatMulInteger, Gemm
            a = shapes.get(node.input[0])
            if a:
                trans_a = any(at.name == "transA" and at.i for at in node.attribute)
                k = a[-2] if (op == "Gemm" and trans_a) else a[-1]
                macs = _prod(out) * k
            weight = node.input[1]
        if not macs:
            continue
        counted += 1
        total += macs
        if dtypes.get(weight) in int8_types or dtypes.get(node.input[0]) in int8_types:
            int8_flops += macs
    if not counted:
        raise FlopsUnavailable("the graph has no Conv / MatMul / Gemm op to count")
    compute = "int8" if int8_flops * 2 > total else "fp32"
    return GraphFlops(2 * total, compute, counted, "onnx graph")
