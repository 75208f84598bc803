"""Where a model's time goes, per operator type: LiteRT (one op at a time) and ONNX Runtime (its profiler).

    python benchmarks/op_profile.py MODEL.tflite|MODEL.onnx [--threads 1] [--runs 10]

LiteRT's Python API has no op profiler (``benchmark_model --enable_op_profiling``
is a C++ tool, not in the wheels). :func:`profile_tflite` therefore measures
every distinct operator of subgraph 0 *alone*: a one-op model with the same
operator, options, tensor shapes, types, quantization and constant inputs
(weights included) is built from the flatbuffer and timed with the same
interpreter and threads (XNNPACK applies as it does to the whole graph);
identical ops (same code, options, shapes, constness) are timed once and
counted as many times as they occur. Row time = count x median of one op.
The sum over rows is printed next to the whole model's measured ``invoke()``:
what the ops cost alone vs what they cost in the graph (XNNPACK fuses some
neighbours, e.g. a bias add into a fully-connected layer, and elides some
reshapes, so the sum can exceed the whole).

Graph facts come with it (:func:`tflite_graph_facts`): op counts, and for
every ``FULLY_CONNECTED`` / ``BATCH_MATMUL`` whether its weight input is a
constant buffer (XNNPACK packs it once, "static") or computed at run time
(a ``DEQUANTIZE`` / ``TRANSPOSE`` output: re-read every call).

:func:`profile_onnx` runs ONNX Runtime's own profiler and sums node times
per op type.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["profile_tflite", "profile_onnx", "tflite_graph_facts", "format_profile", "read_bandwidth"]


def read_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """GB/s one thread reads from memory: summing a ``mib`` MiB float32 array (far larger than the caches), best of
    ``repeats`` in thread CPU time."""
    a = np.ones(mib * 2**20 // 4, np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time_ns()
        np.add.reduce(a)
        best = min(best, (time.thread_time_ns() - t0) / 1e9)
    return a.nbytes / best / 1e9


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _op_names() -> dict[int, str]:
    schema = _schema()
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _model(data: bytes) -> Any:
    from edge_embedder.convert.litert_export import _unpack

    return _unpack(data)


def _code(m: Any, op: Any) -> int:
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    return int(fbu.get_builtin_code_from_operator_code(m.operatorCodes[op.opcodeIndex]))


def _is_const(m: Any, sg: Any, t: int) -> bool:
    b = sg.tensors[t].buffer
    return bool(b) and m.buffers[b].data is not None and len(m.buffers[b].data) > 0


def tflite_graph_facts(data: bytes, subgraph: int = 0) -> dict[str, Any]:
    """Op counts of a subgraph and whether the matmul weights are constants (see the module docstring)."""
    m = _model(data)
    sg = m.subgraphs[subgraph]
    names = _op_names()
    producers = {o: op for op in sg.operators for o in (op.outputs if op.outputs is not None else [])}
    counts = collections.Counter(names.get(_code(m, op), "?") for op in sg.operators)
    weights: collections.Counter = collections.Counter()
    weight_bytes = 0
    for op in sg.operators:
        name = names.get(_code(m, op), "?")
        if name not in ("FULLY_CONNECTED", "BATCH_MATMUL") or op.inputs is None or len(op.inputs) < 2:
            continue
        w = int(op.inputs[1])
        if _is_const(m, sg, w):
            weights[f"{name}: weight a constant buffer (static)"] += 1
            weight_bytes += len(m.buffers[sg.tensors[w].buffer].data)
        elif w in producers:
            weights[f"{name}: weight computed by {names.get(_code(m, producers[w]), '?')}"] += 1
        else:
            weights[f"{name}: weight a graph input / activation"] += 1
    return {"ops": sum(counts.values()), "op_counts": dict(counts.most_common()), "matmul_weights": dict(weights),
            "static_weight_bytes": weight_bytes}


def _single_op_model(m: Any, sg: Any, op: Any) -> bytes:
    from edge_embedder.convert.litert_export import _pack

    schema = _schema()
    nm = schema.ModelT()
    nm.version = m.version
    nm.operatorCodes = [copy.copy(m.operatorCodes[op.opcodeIndex])]
    nm.buffers = [schema.BufferT()]
    tensors, remap = [], {}
    ids = [int(i) for i in list(op.inputs) + list(op.outputs) if int(i) >= 0]
    for ti in dict.fromkeys(ids):
        t = copy.copy(sg.tensors[ti])
        nb = schema.BufferT()
        if _is_const(m, sg, ti):
            nb.data = m.buffers[sg.tensors[ti].buffer].data
        nm.buffers.append(nb)
        t.buffer = len(nm.buffers) - 1
        remap[ti] = len(tensors)
        tensors.append(t)
    nsg = schema.SubGraphT()
    nsg.tensors = tensors
    nsg.inputs = [remap[int(i)] for i in op.inputs if int(i) >= 0 and not _is_const(m, sg, int(i))]
    nsg.outputs = [remap[int(o)] for o in op.outputs]
    nop = copy.copy(op)
    nop.opcodeIndex = 0
    nop.inputs = [remap[int(i)] if int(i) >= 0 else -1 for i in op.inputs]
    nop.outputs = [remap[int(o)] for o in op.outputs]
    nsg.operators = [nop]
    nm.subgraphs = [nsg]
    nm.signatureDefs = []
    nm.metadata = []
    return _pack(nm)


def _time_interpreter(model: bytes, threads: int, runs: int, warmup: int = 2, subgraph: int = 0) -> float:
    """Median ms of ``invoke()`` of a subgraph (thread CPU time at 1 thread, wall time otherwise), random inputs."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=threads)
    rng = np.random.default_rng(0)

    def value(d: dict) -> np.ndarray:
        if np.issubdtype(d["dtype"], np.floating):
            return rng.standard_normal(d["shape"]).astype(d["dtype"])
        return np.zeros(d["shape"], d["dtype"])

    if subgraph:
        key = list(it.get_signature_list())[subgraph]
        runner = it.get_signature_runner(key)
        feed = {k: value(d) for k, d in runner.get_input_details().items()}

        def invoke() -> None:
            runner(**feed)
    else:
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], value(d))
        invoke = it.invoke
    clock = time.thread_time_ns if threads == 1 else time.perf_counter_ns
    for _ in range(warmup):
        invoke()
    times = []
    for _ in range(runs):
        t0 = clock()
        invoke()
        times.append((clock() - t0) / 1e6)
    return statistics.median(times)


def _options_key(op: Any) -> str:
    o = op.builtinOptions
    return "" if o is None else repr(sorted((k, repr(v)) for k, v in vars(o).items()))


def profile_tflite(path: str | os.PathLike, threads: int = 1, runs: int = 10, subgraph: int = 0) -> dict[str, Any]:
    """Per-op-type time of a .tflite subgraph (see the module docstring) and the whole subgraph's invoke time."""
    data = Path(path).read_bytes()
    m = _model(data)
    sg = m.subgraphs[subgraph]
    names = _op_names()
    groups: dict[tuple, list[Any]] = {}
    for op in sg.operators:
        sig = tuple((tuple(sg.tensors[int(i)].shape), int(sg.tensors[int(i)].type), _is_const(m, sg, int(i)))
                    for i in op.inputs if int(i) >= 0)
        outs = tuple(tuple(sg.tensors[int(o)].shape) for o in op.outputs)
        groups.setdefault((_code(m, op), sig, outs, _options_key(op)), []).append(op)
    rows: dict[str, dict[str, float]] = collections.defaultdict(lambda: {"count": 0, "ms": 0.0})
    detail = []
    for (code, sig, outs, _), ops in groups.items():
        name = names.get(code, str(code))
        ms = _time_interpreter(_single_op_model(m, sg, ops[0]), threads, runs)
        rows[name]["count"] += len(ops)
        rows[name]["ms"] += ms * len(ops)
        detail.append({"op": name, "count": len(ops), "ms_each": ms, "inputs": [list(s[0]) for s in sig],
                       "outputs": [list(o) for o in outs]})
    whole = _time_interpreter(data, threads, runs, subgraph=subgraph)
    total = sum(r["ms"] for r in rows.values())
    table = sorted(({"op": k, "count": int(v["count"]), "ms": v["ms"], "share": v["ms"] / total if total else 0.0}
                    for k, v in rows.items()), key=lambda r: -r["ms"])
    detail.sort(key=lambda r: -r["ms_each"] * r["count"])
    shape = [list(sg.tensors[int(i)].shape) for i in sg.inputs]
    name = Path(path).name + (f" (subgraph {subgraph}, input {shape[0]})" if subgraph else "")
    return {"model": name, "runtime": "LiteRT (XNNPACK), one op at a time", "threads": threads,
            "whole_ms": whole, "sum_ms": total, "ops": table, "top": detail[:12],
            "facts": tflite_graph_facts(data, subgraph)}


def profile_onnx(path: str | os.PathLike, threads: int = 1, runs: int = 10) -> dict[str, Any]:
    """Per-op-type time of an .onnx from ONNX Runtime's profiler (node events summed over ``runs``)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="ort_profile_") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "p")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        dtype = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32,
                 "tensor(int64)": np.int64}[inp.type]
        x = (np.random.default_rng(0).standard_normal(shape) * 50 + 100).astype(dtype)
        for _ in range(2):
            sess.run(None, {inp.name: x})
        t0 = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {inp.name: x})
        whole = (time.perf_counter() - t0) / runs * 1e3
        events = json.loads(Path(sess.end_profiling()).read_text())
    per: dict[str, dict[str, float]] = collections.defaultdict(lambda: {"count": 0, "us": 0.0})
    n_runs = 0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            n_runs += 1
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        op = e.get("args", {}).get("op_name", "?")
        per[op]["us"] += float(e.get("dur", 0))
        per[op]["count"] += 1
    n_runs = max(n_runs, 1)
    total = sum(v["us"] for v in per.values()) / n_runs / 1e3
    table = sorted(({"op": k, "count": int(v["count"] // n_runs), "ms": v["us"] / n_runs / 1e3,
                     "share": (v["us"] / n_runs / 1e3) / total if total else 0.0} for k, v in per.items()),
                   key=lambda r: -r["ms"])
    return {"model": Path(path).name, "runtime": f"ONNX Runtime {ort.__version__} profiler", "threads": threads,
            "whole_ms": whole, "sum_ms": total, "ops": table}


def format_profile(p: dict[str, Any], top: int = 12) -> list[str]:
    """Markdown lines for one profile."""
    lines = [f"**{p['model']}**, {p['runtime']}, {p['threads']} thread(s): whole model {p['whole_ms']:.1f} ms, "
             f"sum of ops {p['sum_ms']:.1f} ms", "",
             "| op | count | ms | share |", "|---|---|---|---|"]
    lines += [f"| {r['op']} | {r['count']} | {r['ms']:.2f} | {100 * r['share']:.1f}% |" for r in p["ops"][:top]]
    facts = p.get("facts")
    if facts:
        lines += ["", f"Graph: {facts['ops']} ops ({', '.join(f'{k} {v}' for k, v in facts['op_counts'].items())}); "
                  f"matmul weights: {', '.join(f'{k}: {v}' for k, v in facts['matmul_weights'].items())}."]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--subgraph", type=int, default=0, help="TFLite: which subgraph (signature) to profile")
    args = ap.parse_args(argv)
    if args.model.endswith(".onnx"):
        profile = profile_onnx(args.model, args.threads, args.runs)
    else:
        profile = profile_tflite(args.model, args.threads, args.runs, args.subgraph)
    print("\n".join(format_profile(profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
