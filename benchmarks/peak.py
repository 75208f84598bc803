"""The machine's measured matrix-multiply peak, per data type and thread count.

The harness reports each model's achieved GFLOP/s as a percentage of this
peak, so a user can see how close a variant already is to what the CPU can do.

* ``fp32``: a large single-precision GEMM (M = N = K = 1024 by default).
* ``int8``: a large uint8 x int8 -> int32 GEMM of the same size.

Both run in ONNX Runtime's MLAS kernels (``MatMul`` / ``MatMulInteger``, one
intra-op pool of ``threads`` threads), the same class of hand-tuned kernels
that XNNPACK and ruy use for LiteRT. Without onnxruntime there is no peak: a
GEMM of another library (numpy's BLAS, say) is not the same class of kernels
and gave peaks below what the models themselves reached ("% peak 239%"), so
each data type then carries the reason instead of a figure. The best of
``repeats`` calls is taken (peak, not typical). Only the MACs count:
2 * M * N * K FLOPs per call.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["measure_peaks"]


def measure_peaks(threads: int, size: int = 1024, repeats: int = 15) -> dict[str, dict]:
    """``{"fp32": {...}, "int8": {...}}``: each ``{"gflops", "how", "threads"}``, or ``{"gflops": None, "why"}``."""
    try:
        import onnxruntime  # noqa: F401
        from onnx import helper  # noqa: F401
    except ImportError:
        why = ("not measured: the peak is ONNX Runtime's MLAS GEMM and onnxruntime / onnx are not installed "
               "(pip install 'edge-embedder[onnx]' onnx)")
        return {"fp32": {"gflops": None, "why": why}, "int8": {"gflops": None, "why": why}}
    return {"fp32": _ort_gemm(threads, size, repeats, integer=False),
            "int8": _ort_gemm(threads, size, repeats, integer=True)}


def _ort_gemm(threads: int, n: int, repeats: int, *, integer: bool) -> dict:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edge_embedder.errors import first_line

    rng = np.random.default_rng(0)
    if integer:
        a = rng.integers(0, 255, (n, n), dtype=np.uint8)
        b = rng.integers(-127, 127, (n, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["A", "B"], ["C"])
        inputs = [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])]
        init = [helper.make_tensor("B", TensorProto.INT8, [n, n], b.tobytes(), raw=True)]
        out_t = helper.make_tensor_value_info("C", TensorProto.INT32, [n, n])
        op = "MatMulInteger (u8 x s8 -> s32)"
    else:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        node = helper.make_node("MatMul", ["A", "B"], ["C"])
        inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])]
        init = [helper.make_tensor("B", TensorProto.FLOAT, [n, n], b.tobytes(), raw=True)]
        out_t = helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])
        op = "MatMul (sgemm)"
    graph = helper.make_graph([node], "peak", inputs, [out_t], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        feed = {"A": a}
        sess.run(None, feed)
        best = _best_of(lambda: sess.run(None, feed), repeats)
    except Exception as exc:
        return {"gflops": None, "why": f"not measured: onnxruntime's {op} failed ({first_line(exc)})"}
    return {"gflops": 2 * n**3 / best / 1e9, "how": f"onnxruntime {ort.__version__} {op} {n}x{n}x{n}, best of {repeats}",
            "threads": threads}


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / 1e9)
    return best
