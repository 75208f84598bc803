"""The machine's measured matrix-multiply peak, per data type and thread count.

The harness reports each model's achieved GFLOP/s as a percentage of this
peak, so a user can see how close a variant already is to what the CPU can do.

* ``fp32``: a large single-precision GEMM (M = N = K = 1024 by default).
* ``int8``: a large uint8 x int8 -> int32 GEMM of the same size.

Both run in ONNX Runtime's MLAS kernels (``MatMul`` / ``MatMulInteger``, one
intra-op pool of ``threads`` threads), the same class of hand-tuned kernels
that XNNPACK and ruy use for LiteRT. Without onnxruntime, fp32 falls back to
numpy's BLAS in a subprocess pinned to ``threads`` threads and int8 is
reported as unavailable. The best of ``repeats`` calls is taken (peak, not
typical). Only the MACs count: 2 * M * N * K FLOPs per call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Optional

import numpy as np

__all__ = ["measure_peaks"]


def measure_peaks(threads: int, size: int = 1024, repeats: int = 15) -> dict[str, Optional[dict]]:
    """``{"fp32": {...} | None, "int8": {...} | None}`` with GFLOP/s and how it was measured."""
    out: dict[str, Optional[dict]] = {"fp32": None, "int8": None}
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        out["fp32"] = _numpy_sgemm_subprocess(threads, size, repeats)
        return out
    out["fp32"] = _ort_gemm(threads, size, repeats, integer=False)
    out["int8"] = _ort_gemm(threads, size, repeats, integer=True)
    return out


def _ort_gemm(threads: int, n: int, repeats: int, *, integer: bool) -> Optional[dict]:
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
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
    except Exception:
        return None
    feed = {"A": a}
    sess.run(None, feed)
    best = _best_of(lambda: sess.run(None, feed), repeats)
    return {"gflops": 2 * n**3 / best / 1e9, "how": f"onnxruntime {ort.__version__} {op} {n}x{n}x{n}, best of {repeats}",
            "threads": threads}


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / 1e9)
    return best


_NUMPY_CHILD = """
import json, sys, time
import numpy as np
n, repeats = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = a.T.copy()
a @ b
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter_ns(); a @ b; best = min(best, (time.perf_counter_ns() - t0) / 1e9)
print(json.dumps({"seconds": best}))
"""


def _numpy_sgemm_subprocess(threads: int, n: int, repeats: int) -> Optional[dict]:
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    try:
        r = subprocess.run([sys.executable, "-c", _NUMPY_CHILD, str(n), str(repeats)], env=env,
                           capture_output=True, text=True, timeout=300)
        best = json.loads(r.stdout.strip().splitlines()[-1])["seconds"]
    except Exception:
        return None
    return {"gflops": 2 * n**3 / best / 1e9, "how": f"numpy {np.__version__} float32 matmul {n}x{n}x{n}, best of {repeats}",
            "threads": threads}
