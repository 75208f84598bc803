"""Low-level LiteRT (.tflite) export and quantization helpers.

Reusable by every converter in this package (EfficientNet-Lite0 today, Hugging
Face ViT / CLIP later). Nothing heavy is imported at module import: torch,
litert-torch and ai-edge-quantizer are imported inside the functions.

Routes (measured on EfficientNet-Lite0, see ``models/README.md``):

* :func:`export_float32` -- ``litert_torch.convert(module.eval(), sample).export``.
  Give the module an NHWC input (permute inside the wrapper) so the .tflite
  input is NHWC.
* :func:`quantize_full_int8` -- the shipped int8 route. ai-edge-quantizer static
  int8 (int8 weights per channel, int8 activations per tensor, global min/max
  calibration), with the graph INPUT/OUTPUT left float so the
  quantizer inserts ``QUANTIZE`` after the input and ``DEQUANTIZE`` before the
  output. The float input is then retyped to uint8 (:func:`float_input_to_uint8`,
  our equivalent of TF's ``modify_model_interface``): the ``QUANTIZE`` op
  becomes a uint8 -> int8 requantize and the output stays float32.
  The input's calibration range is pinned (``input_range``) so the uint8
  quantization is exactly the model's pixel normalization: for ``(x - 127) /
  128`` the range ``[-127/128, 128/128]`` gives scale 1/128 and zero point 127,
  i.e. raw RGB pixels 0..255 are fed unchanged, as MediaPipe feeds uint8 models.
  When the mean is not an integer or differs per channel (ViT 127.5, CLIP),
  wrap the module with :func:`wrap_pixel_normalization` (float input = raw
  pixels, normalization inside) and pin ``input_range=(0, 255)``: the uint8
  input then has scale 1 and zero point 0.
* :func:`quantize_fp16_weights` / :func:`quantize_dynamic_int8` -- cheap extra
  variants (float16 weights, float compute / dynamic-range int8). Note: for
  EfficientNet-Lite0 dynamic-range int8 measured much slower than float32.
* :func:`quantize_int8_matmuls` -- the text towers' ``int8``: static int8
  (int8 weights per channel, int8 activations per tensor, calibrated) for the
  fully-connected layers only, int8 weights for the token-embedding table,
  everything else float. Token ids stay int32, the output float32. Quantizing
  every op with ai-edge-quantizer's static recipe gave garbage on a CLIP text
  tower (cosine -0.13 to 0.97 vs float: the causal mask's huge negative
  values share an int8 range with real activations).

Why not ``ai_edge_litert._pywrap_modify_model_interface``: on ai-edge-quantizer
output it returns an error for float32 output, and with int8/uint8 output it
silently writes a ~0.6 MB model without the weight buffers.
Why not ai-edge-quantizer's default static recipe alone: it quantizes the graph
input/output themselves (int8 I/O) with calibrated, non-exact input
parameters.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = [
    "export_float32",
    "export_signatures",
    "share_quantization_tables",
    "short_tensor_names",
    "wrap_pixel_normalization",
    "pixel_input_range",
    "quantize_full_int8",
    "quantize_fp16_weights",
    "quantize_dynamic_int8",
    "quantize_int8_matmuls",
    "float_input_to_uint8",
    "signature_io",
    "io_details",
    "uint8_input_quantization",
    "inline_buffers",
    "classification_head_tensors",
]

ModelSource = Union[bytes, bytearray, memoryview, str, os.PathLike]

# tflite schema enums (schema.fbs), duplicated to keep the import light.
_TT_FLOAT32, _TT_UINT8, _TT_INT8 = 0, 3, 9
_OP_QUANTIZE = 114


def _model_bytes(model: ModelSource) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    return Path(model).read_bytes()


def _maybe_write(data: bytes, output_path: str | os.PathLike | None) -> bytes:
    if output_path is not None:
        from edge_embedder.files import atomic_write

        atomic_write(output_path, data)
    return data


# --------------------------------------------------------------------------- #
# Float export
# --------------------------------------------------------------------------- #


def export_float32(
    module: Any,
    sample_inputs: Sequence[Any] | Any,
    output_path: str | os.PathLike | None = None,
) -> bytes:
    """Convert a torch module to a float32 .tflite; return the bytes.

    ``sample_inputs`` is one torch tensor (or a sequence of them) with the exact
    static shape(s) of the exported input(s), e.g. ``torch.zeros(1, 224, 224, 3)``
    for an NHWC image model. Written atomically to ``output_path`` if given.
    """
    import litert_torch
    import torch  # noqa: F401  (imported here on purpose, not at module import)

    if not isinstance(sample_inputs, (tuple, list)):
        sample_inputs = (sample_inputs,)
    module = module.eval()
    # litert-torch prints its progress on stdout: keep stdout for callers' output.
    with tempfile.TemporaryDirectory(prefix="litert_export_") as tmp, contextlib.redirect_stdout(
        sys.stderr
    ):
        tmp_path = os.path.join(tmp, "model.tflite")
        litert_torch.convert(module, tuple(sample_inputs)).export(tmp_path)
        data = Path(tmp_path).read_bytes()
    return _maybe_write(data, output_path)


def export_signatures(
    module: Any,
    signatures: Sequence[tuple[str, Any]],
    output_path: str | os.PathLike | None = None,
) -> bytes:
    """Convert ``module`` once per ``(key, sample)`` into one .tflite with one signature each; return the bytes.

    Each signature is its own subgraph with the sample's static shape; the
    weights are stored once and shared by every subgraph (litert-torch
    deduplicates equal constant buffers), so each extra signature adds only its
    graph (measured on a CLIP B/32 text tower: +1% for 9 signatures). The first
    signature becomes subgraph 0, what single-signature readers (``Interpreter``
    without ``get_signature_runner``, TFLite metadata) see.
    """
    import litert_torch

    if not signatures:
        raise ValueError("no signatures to export")
    module = module.eval()
    with tempfile.TemporaryDirectory(prefix="litert_export_") as tmp, contextlib.redirect_stdout(sys.stderr):
        tmp_path = os.path.join(tmp, "model.tflite")
        conv: Any = litert_torch
        for key, sample in signatures:
            conv = conv.signature(key, module, sample if isinstance(sample, tuple) else (sample,))
        conv.convert().export(tmp_path)
        data = Path(tmp_path).read_bytes()
    return _maybe_write(short_tensor_names(data), output_path)


def short_tensor_names(model: ModelSource) -> bytes:
    """Subgraphs after the first get short names (``s<i>/t<j>``) for their inner tensors; unchanged with one.

    litert-torch names every tensor by its module path (~500 bytes each): 0.36 MB of names per subgraph of a
    CLIP B/32 text tower, 3.2 MB for 9 extra signatures (+5% on its 67 MB dynamic-int8 file). Subgraph 0 and
    every subgraph's inputs and outputs keep their names; the names are unique per subgraph, so tools that key
    tensors by name (ai-edge-quantizer's calibration) keep the subgraphs apart.
    """
    data = _model_bytes(model)
    from ai_edge_litert import schema_py_generated as schema

    if schema.Model.GetRootAsModel(data, 0).SubgraphsLength() < 2:
        return data
    m = _unpack(data)
    for i, sg in enumerate(m.subgraphs[1:], start=1):
        keep = {int(t) for t in list(sg.inputs) + list(sg.outputs)}
        for j, t in enumerate(sg.tensors):
            if j not in keep:
                t.name = f"s{i}/t{j}"
    return _pack(m)


def wrap_pixel_normalization(
    module: Any,
    mean: Sequence[float] | float,
    std: Sequence[float] | float,
    *,
    nhwc: bool = True,
) -> Any:
    """Return a module taking raw float RGB pixels (0..255) that normalizes inside.

    ``forward(x) = module((x - mean) / std)`` with per-channel mean/std on the
    last (NHWC) or second (NCHW) axis. Used when the normalization cannot be
    folded into the uint8 input quantization (non-integer or per-channel mean):
    quantize with ``input_range=(0, 255)`` to get a uint8 input with scale 1,
    zero point 0.
    """
    import torch

    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    shape = (1, 1, 1, -1) if nhwc else (1, -1, 1, 1)

    class _PixelNormalized(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("mean", mean_t.reshape(shape), persistent=False)
            self.register_buffer("inv_std", (1.0 / std_t).reshape(shape), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner((x - self.mean) * self.inv_std)

    return _PixelNormalized(module).eval()


def pixel_input_range(mean: float, std: float) -> tuple[float, float]:
    """Real range of ``(x - mean) / std`` for pixels x in 0..255."""
    return ((0.0 - mean) / std, (255.0 - mean) / std)


# --------------------------------------------------------------------------- #
# Introspection
# --------------------------------------------------------------------------- #


def _interpreter(model: ModelSource, num_threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=_model_bytes(model), num_threads=num_threads)


def signature_io(model: ModelSource) -> tuple[str, list[str], list[str]]:
    """(signature key, input names, output names) of the model's first signature."""
    sigs = _interpreter(model).get_signature_list()
    if not sigs:
        raise ValueError("model has no signature; export it with litert_torch")
    key = next(iter(sigs))
    return key, list(sigs[key]["inputs"]), list(sigs[key]["outputs"])


def signature_list(model: ModelSource) -> dict[str, list[str]]:
    """``{signature key: input names}`` in subgraph order."""
    return {k: list(v["inputs"]) for k, v in _interpreter(model).get_signature_list().items()}


def io_details(model: ModelSource) -> dict[str, list[dict[str, Any]]]:
    """Input/output tensors: name, dtype name, shape, (scale, zero_point)."""
    it = _interpreter(model)

    def conv(d: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": d["name"],
            "dtype": np.dtype(d["dtype"]).name,
            "shape": [int(v) for v in d["shape"]],
            "quantization": (float(d["quantization"][0]), int(d["quantization"][1])),
        }

    return {
        "inputs": [conv(d) for d in it.get_input_details()],
        "outputs": [conv(d) for d in it.get_output_details()],
    }


def uint8_input_quantization(model: ModelSource, index: int = 0) -> tuple[float, int]:
    """(scale, zero_point) of uint8 input ``index``; raises if it is not uint8."""
    d = io_details(model)["inputs"][index]
    if d["dtype"] != "uint8":
        raise ValueError(f"input {index} is {d['dtype']}, not uint8")
    return d["quantization"]


# --------------------------------------------------------------------------- #
# Quantization (ai-edge-quantizer)
# --------------------------------------------------------------------------- #


def _calibration_data(
    model: bytes, samples: Iterable[Any]
) -> dict[str, list[dict[str, np.ndarray]]]:
    key, in_names, _ = signature_io(model)
    runs = []
    for s in samples:
        if isinstance(s, Mapping):
            runs.append({k: np.asarray(v, dtype=np.float32) for k, v in s.items()})
        else:
            if len(in_names) != 1:
                raise ValueError(
                    f"model has inputs {in_names}; pass calibration samples as dicts"
                )
            runs.append({in_names[0]: np.asarray(s, dtype=np.float32)})
    if not runs:
        raise ValueError("no calibration samples")
    return {key: runs}


def _input_tensor_names(model: bytes) -> list[str]:
    it = _interpreter(model)
    return [d["name"] for d in it.get_input_details()]


def quantize_full_int8(
    float_model: ModelSource,
    calibration_samples: Iterable[Any],
    *,
    input_range: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
    uint8_input: bool = True,
    range_update: str = "min_max",
    num_threads: int = 2,
    float_head: bool = False,
    output_path: str | os.PathLike | None = None,
) -> bytes:
    """Full-integer static int8 model with uint8 (or float) input and float32 output.

    ``calibration_samples``: arrays exactly as the float model takes them (e.g.
    normalized NHWC float32 ``[1, H, W, 3]``), or dicts input-name -> array for
    multi-input models. ``input_range``: real (min, max) pinned for the graph
    input(s) instead of the calibrated one, so the uint8 quantization is exact
    (see :func:`pixel_input_range`); one pair for all inputs or one per input.
    With ``uint8_input=False`` the input stays float32 (with an internal
    QUANTIZE op). All weights int8 per channel, all activations int8 per tensor.

    ``range_update``: how activation ranges are accumulated over the samples:
    ``"min_max"`` (global min / max, default) or ``"moving_average"``
    (ai-edge-quantizer's default, smoothing 0.95). On EfficientNet-Lite0 global
    min/max gave higher int8-vs-float cosine on every test photo (worst case
    0.991 vs 0.981).
    """
    from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    update = {
        "min_max": qsv_utils.min_max_update,
        "moving_average": qsv_utils.moving_average_update,
    }[range_update]

    model = _model_bytes(float_model)
    calib = _calibration_data(model, calibration_samples)

    q = quantizer.Quantizer(model, recipe.static_wi8_ai8())
    # Keep graph I/O float: the quantizer inserts QUANTIZE / DEQUANTIZE ops.
    q.update_quantization_recipe(".*", "INPUT", algorithm_key="no_quantize")
    q.update_quantization_recipe(".*", "OUTPUT", algorithm_key="no_quantize")
    if float_head:
        import re

        # An op's scope is its output tensor names, each followed by ";" (ai-edge-quantizer's get_op_scope).
        fc, act = classification_head_tensors(model)
        q.add_weight_only_config(f"^{re.escape(fc)};$", "FULLY_CONNECTED", 8)
        if act is not None:
            op, name = act
            q.update_quantization_recipe(f"^{re.escape(name)};$", op, algorithm_key="no_quantize")
    # Same as Quantizer.calibrate, but with a selectable range update function.
    rm = recipe_manager.RecipeManager()
    rm.load_quantization_recipe(q.get_quantization_recipe())
    cal = calibrator.Calibrator(model, num_threads=num_threads, qsv_update_func=update)
    cal.calibrate(calib, rm)
    qsvs = cal.get_model_qsvs()

    if input_range is not None:
        names = _input_tensor_names(model)
        ranges = (
            [tuple(input_range)] * len(names)
            if np.ndim(input_range) == 1
            else [tuple(r) for r in input_range]
        )
        for name, (lo, hi) in zip(names, ranges):
            if name not in qsvs:
                raise KeyError(f"no calibration stats for input tensor {name!r}")
            old = qsvs[name]
            qsvs[name] = {
                "min": np.full(np.shape(old["min"]), lo, dtype=np.float32),
                "max": np.full(np.shape(old["max"]), hi, dtype=np.float32),
            }

    result = q.quantize(qsvs, enable_progress_report=False)
    data = inline_buffers(bytes(result.quantized_model))
    if uint8_input:
        data = float_input_to_uint8(data)
    return _maybe_write(data, output_path)


_OP_FULLY_CONNECTED, _OP_SOFTMAX, _OP_LOGISTIC = 9, 25, 14


def classification_head_tensors(model: ModelSource) -> tuple[str, Optional[tuple[str, str]]]:
    """The output tensor name of a classifier's head ``FULLY_CONNECTED`` and, when the graph applies
    one after it, ``(op name, output tensor name)`` of its ``SOFTMAX`` / ``LOGISTIC``.

    Follows the graph back from its (single) output. Raises ``ValueError`` when
    the output is not produced by [SOFTMAX | LOGISTIC <-] FULLY_CONNECTED.
    """
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    m = _unpack(_model_bytes(model))
    sg = m.subgraphs[0]
    producers = {int(op.outputs[0]): op for op in sg.operators if op.outputs is not None and len(op.outputs)}

    def code(op: Any) -> int:
        return int(fbu.get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex]))

    def name(t: int) -> str:
        n = sg.tensors[t].name
        return n.decode("utf-8") if isinstance(n, (bytes, bytearray)) else str(n)

    if len(sg.outputs) != 1:
        raise ValueError(f"expected one graph output, got {len(sg.outputs)}")
    t = int(sg.outputs[0])
    op = producers.get(t)
    act = None
    if op is not None and code(op) in (_OP_SOFTMAX, _OP_LOGISTIC):
        act = ("SOFTMAX" if code(op) == _OP_SOFTMAX else "LOGISTIC", name(t))
        t = int(op.inputs[0])
        op = producers.get(t)
    if op is None or code(op) != _OP_FULLY_CONNECTED:
        raise ValueError("the graph output is not produced by a FULLY_CONNECTED head (after an optional softmax)")
    return name(t), act


def _unpack(data: bytes) -> Any:
    """``ModelT`` of ``data`` with every buffer's bytes inline.

    ai-edge-quantizer writes large models with their buffers *after* the
    flatbuffer (``Buffer.offset`` / ``size``); the object API does not load
    those, so re-packing would drop the weights ("Constant buffer N specified
    an out of range offset"). Here they are read in and made inline again.
    """
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    for b in m.buffers or []:
        if b.offset and b.offset > 1:
            b.data = np.frombuffer(data, np.uint8, count=int(b.size), offset=int(b.offset))
            b.offset, b.size = 0, 0
    return m


def _pack(m: Any) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1 << 20)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def inline_buffers(model: ModelSource) -> bytes:
    """The model with buffers stored inline (see :func:`_unpack`); unchanged when already so."""
    data = _model_bytes(model)
    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(data, 0)
    if not any(root.Buffers(i).Offset() > 1 for i in range(root.BuffersLength())):
        return data
    return _pack(_unpack(data))


def float_input_to_uint8(model: ModelSource) -> bytes:
    """Retype every float32 graph input that feeds a QUANTIZE(->int8) op to uint8.

    The uint8 input gets the int8 tensor's scale and zero point + 128, and the
    QUANTIZE op becomes a uint8 -> int8 requantize (what TF's
    ``modify_model_interface`` does for uint8 inputs). Outputs are unchanged.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    m = _unpack(_model_bytes(model))
    changed = 0
    for sg in m.subgraphs:
        for ti in list(sg.inputs):
            t = sg.tensors[ti]
            if t.type != _TT_FLOAT32:
                continue
            consumers = [op for op in sg.operators if ti in list(op.inputs)]
            if not consumers or any(
                fbu.get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex])
                != _OP_QUANTIZE
                for op in consumers
            ):
                raise ValueError(
                    f"input {t.name!r} is not consumed only by QUANTIZE ops; "
                    "not a full-integer model with float input"
                )
            qparams = None
            for op in consumers:
                out = sg.tensors[op.outputs[0]]
                qp = out.quantization
                if out.type != _TT_INT8 or qp is None or qp.scale is None or len(qp.scale) != 1:
                    raise ValueError(f"QUANTIZE after {t.name!r} is not per-tensor int8")
                cur = (float(qp.scale[0]), int(qp.zeroPoint[0]))
                if qparams is not None and cur != qparams:
                    raise ValueError(f"inconsistent quantization after {t.name!r}")
                qparams = cur
            scale, zp_int8 = qparams
            zp = zp_int8 + 128
            if not 0 <= zp <= 255:
                raise ValueError(f"uint8 zero point {zp} out of range for {t.name!r}")
            new_qp = schema.QuantizationParametersT()
            new_qp.scale = [np.float32(scale)]
            new_qp.zeroPoint = [zp]
            new_qp.quantizedDimension = 0
            t.type = _TT_UINT8
            t.quantization = new_qp
            changed += 1
    if not changed:
        raise ValueError("no float32 input to convert")
    return _pack(m)


_WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D_TRANSPOSE")


def quantize_fp16_weights(
    float_model: ModelSource, output_path: str | os.PathLike | None = None, ops: Sequence[str] = _WEIGHT_OPS
) -> bytes:
    """Float16 weights (conv / fully-connected, or ``ops``), float32 compute and I/O.

    Text towers add ``EMBEDDING_LOOKUP`` (the token-embedding table).
    """
    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(_model_bytes(float_model))
    for op in ops:
        q.update_quantization_recipe(
            regex=".*",
            operation_name=op,
            algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=qtyping.TensorQuantizationConfig(
                    num_bits=16, dtype=qtyping.TensorDataType.FLOAT
                ),
                compute_precision=qtyping.ComputePrecision.FLOAT,
                explicit_dequantize=True,
            ),
        )
    data = share_quantization_tables(inline_buffers(bytes(q.quantize(enable_progress_report=False).quantized_model)))
    return _maybe_write(data, output_path)


def quantize_dynamic_int8(
    float_model: ModelSource, output_path: str | os.PathLike | None = None
) -> bytes:
    """Dynamic-range int8 (int8 weights, activations quantized at run time).

    Float I/O. Not used for EfficientNet-Lite0 (slower than float32 there).
    ``BATCH_MATMUL`` stays float: its int8-weight kernel takes the constant as
    the right operand only, and a graph whose constant is the left one
    (SigLIP's attention-pooling head: the learned probe's query, folded to a
    constant) would not load ("BATCH_MATMUL failed to prepare"). Attention
    products of two activations (ViT, CLIP) are not quantized by this recipe
    anyway, so their files are unchanged.
    """
    from ai_edge_quantizer import quantizer, recipe

    rules = list(recipe.dynamic_wi8_afp32())
    rules.append({"regex": ".*", "operation": "BATCH_MATMUL", "algorithm_key": "no_quantize"})
    q = quantizer.Quantizer(_model_bytes(float_model), rules)
    data = share_quantization_tables(inline_buffers(bytes(q.quantize(enable_progress_report=False).quantized_model)))
    return _maybe_write(data, output_path)


def quantize_int8_matmuls(
    float_model: ModelSource,
    calibration_samples: Iterable[Any],
    *,
    static_ops: Sequence[str] = ("FULLY_CONNECTED",),
    weight_only_ops: Sequence[str] = ("EMBEDDING_LOOKUP",),
    range_update: str = "min_max",
    num_threads: int = 2,
    output_path: str | os.PathLike | None = None,
) -> bytes:
    """Static int8 for ``static_ops``, int8 weights for ``weight_only_ops``, the rest float.

    ``calibration_samples``: inputs exactly as the model takes them (their
    dtype is kept: int32 token ids ``[1, L]``), or dicts input-name -> array;
    for a model with several signatures, a mapping signature key -> such a
    list, one entry per signature (each subgraph has its own activations).
    Graph inputs and outputs keep their types. ``range_update`` as in
    :func:`quantize_full_int8`.
    """
    from ai_edge_quantizer import calibrator, qtyping, quantizer, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    update = {
        "min_max": qsv_utils.min_max_update,
        "moving_average": qsv_utils.moving_average_update,
    }[range_update]
    model = _model_bytes(float_model)
    sigs = signature_list(model)
    per_signature = (dict(calibration_samples) if isinstance(calibration_samples, Mapping)
                     else {next(iter(sigs)): list(calibration_samples)})
    unknown = sorted(set(per_signature) - set(sigs))
    if unknown:
        raise ValueError(f"calibration samples for signatures {unknown} the model does not have ({list(sigs)})")
    if len(per_signature) != len(sigs):
        raise ValueError(f"the model has signatures {list(sigs)}: give calibration samples for each of them")
    data_by_key: dict[str, list[dict[str, np.ndarray]]] = {}
    for key, samples in per_signature.items():
        in_names = sigs[key]
        runs = []
        for s in samples:
            if isinstance(s, Mapping):
                runs.append({k: np.asarray(v) for k, v in s.items()})
            else:
                if len(in_names) != 1:
                    raise ValueError(f"signature {key!r} has inputs {in_names}; pass calibration samples as dicts")
                runs.append({in_names[0]: np.asarray(s)})
        if not runs:
            raise ValueError(f"no calibration samples for signature {key!r}")
        data_by_key[key] = runs

    T = qtyping.TensorQuantizationConfig
    weights = T(num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE)
    static = qtyping.OpQuantizationConfig(
        activation_tensor_config=T(num_bits=8, symmetric=False, granularity=qtyping.QuantGranularity.TENSORWISE),
        weight_tensor_config=weights, compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False)
    weight_only = qtyping.OpQuantizationConfig(
        weight_tensor_config=weights, compute_precision=qtyping.ComputePrecision.INTEGER, explicit_dequantize=False)
    q = quantizer.Quantizer(model)
    for op in static_ops:
        q.update_quantization_recipe(regex=".*", operation_name=op, op_config=static,
                                     algorithm_key=quantizer.AlgorithmName.MIN_MAX_UNIFORM_QUANT)
    for op in weight_only_ops:
        q.update_quantization_recipe(regex=".*", operation_name=op, op_config=weight_only,
                                     algorithm_key=quantizer.AlgorithmName.MIN_MAX_UNIFORM_QUANT)
    rm = recipe_manager.RecipeManager()
    rm.load_quantization_recipe(q.get_quantization_recipe())
    cal = calibrator.Calibrator(model, num_threads=num_threads, qsv_update_func=update)
    cal.calibrate(data_by_key, rm)
    result = q.quantize(cal.get_model_qsvs(), enable_progress_report=False)
    return _maybe_write(share_quantization_tables(inline_buffers(bytes(result.quantized_model))), output_path)


def share_quantization_tables(model: ModelSource) -> bytes:
    """The model with one quantization-parameter table per shared weight buffer; unchanged with one subgraph.

    With several signatures every subgraph has its own tensor for a shared
    weight buffer, and ai-edge-quantizer gives each of them its own copy of the
    per-channel scales and (int64) zero points: on a CLIP B/32 text tower with
    7 signatures that was +8.8 MB (+13%) on a 64 MB dynamic-int8 file. See
    :func:`edge_embedder.metadata.tflite.share_quantization_tables`.
    """
    data = _model_bytes(model)
    from ai_edge_litert import schema_py_generated as schema

    from edge_embedder.metadata import share_quantization_tables as share

    if schema.Model.GetRootAsModel(data, 0).SubgraphsLength() < 2:
        return data
    m = _unpack(data)
    return _pack(m) if share(m) else data
