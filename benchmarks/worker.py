"""One measurement in a fresh process: ``python -m edge_embedder.bench.worker JOB.json``.

The harness starts one worker per (model, backend, thread count), so every
backend runs in a clean process (no torch OpenMP pool next to a LiteRT
interpreter, no allocator state left by another model), and the process'
start-up is a real cold start. The worker:

1. records ``time.monotonic_ns()`` at its first line (the parent records it
   just before ``Popen``; CLOCK_MONOTONIC is system-wide on Linux and macOS),
2. imports its runtime and loads the model,
3. embeds the first image: cold start = that moment minus the parent's start,
4. runs ``warmup`` uncounted and ``runs`` counted embeddings, cycling through
   the (pre-decoded) images, timing each with ``time.perf_counter_ns``, split
   into preprocessing and inference where the backend allows it,
5. optionally embeds every accuracy image once and saves the vectors (.npy),
6. reports its peak RSS (``getrusage`` ``ru_maxrss``).

Protocol on stdout, one line each: ``P <n>`` progress steps done, then either
``R <json>`` (result) or ``F <ErrorType>: <message>`` (failure, exit 3).
Anything else a runtime prints goes to stderr.

Backends: ``edge_embedder`` (the ImageEmbedder on a .tflite or .onnx file;
``ImageClassifier`` when the job's ``task`` is ``image-classification``),
``mediapipe`` (MediaPipe Tasks ImageEmbedder / ImageClassifier on the same .tflite),
``transformers`` (PyTorch eager on the source checkpoint, the route of the
transformers ``image-feature-extraction`` pipeline: image processor, then the
model, pooled output), ``torch-efficientnet-lite0`` (PyTorch eager of the
shipped model's source, ``edge_embedder.convert.efficientnet_lite0``) and
``onnxruntime`` (a bare ``InferenceSession`` on a .onnx file, with the
preprocessing a user would write: ``cv2.resize`` + numpy normalization).

Classifiers (``task`` ``image-classification``): every backend returns the
dense score vector (one score per class, by index), so accuracy is the
top-1 agreement and score difference with the reference's; MediaPipe and
edge_embedder return every class (their default ``max_results``), the
transformers route is ``pipeline("image-classification")``'s own stages
(``preprocess``, ``_forward``, ``postprocess`` with every class). Where a
backend can tell, ``last_post_ns`` is the postprocessing part of the call.
"""

from __future__ import annotations

import time

T_PROCESS = time.monotonic_ns()  # as early as possible: before any import below

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

_out = sys.stdout


def _emit(line: str) -> None:
    _out.write(line + "\n")
    _out.flush()


class _Runner:
    """What a backend provides: embed(i) -> vector, and per-call timings."""

    def __init__(self) -> None:
        self.last_pre_ns: Optional[int] = None  # set by embed() when the backend splits
        self.last_post_ns: Optional[int] = None  # the postprocessing part, when known
        self.info: dict[str, Any] = {}

    def set_images(self, images: list) -> None:
        """Give the runner the decoded RGB arrays it will embed by index."""
        self.images = images

    def embed(self, i: int) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


def _load_images(paths: list[str]) -> list:
    import numpy as np

    from edge_embedder import Image

    return [np.ascontiguousarray(Image.create_from_file(p).numpy_view()) for p in paths]


# -- backends ---------------------------------------------------------------------


def _dense(categories: Any, n: Optional[int] = None) -> Any:
    """Category-like objects (index, score) -> one float32 score per class, by index."""
    import numpy as np

    cats = list(categories)
    v = np.zeros(n if n is not None else len(cats), np.float32)
    for c in cats:
        v[c.index] = c.score
    return v


class EdgeEmbedderRunner(_Runner):
    def __init__(self, job: dict) -> None:
        super().__init__()
        from edge_embedder import BaseOptions, ImageClassifier, ImageClassifierOptions, ImageEmbedder, ImageEmbedderOptions

        base = BaseOptions(model_asset_path=job["model"], num_threads=job["threads"])
        self.classify = job.get("task") == "image-classification"
        if self.classify:
            self.emb = ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base))
        else:
            self.emb = ImageEmbedder.create_from_options(ImageEmbedderOptions(base_options=base))
        self.info = {"runtime": self.emb.backend.runtime, "task": job.get("task") or "image-embedding"}

    def embed(self, i: int):
        if self.classify:
            vec = _dense(self.emb.classify(self.images[i]).classifications[0].categories)
        else:
            vec = self.emb.embed(self.images[i]).embeddings[0].embedding
        t = self.emb.last_timings  # the task's own per-call record
        self.last_pre_ns, self.last_post_ns = t.preprocess_ns, t.postprocess_ns
        return vec

    def close(self) -> None:
        self.emb.close()


class MediaPipeRunner(_Runner):
    def __init__(self, job: dict) -> None:
        super().__init__()
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        if not str(job["model"]).endswith(".tflite"):
            raise ValueError("MediaPipe runs .tflite files only")
        base = BaseOptions(model_asset_path=str(job["model"]))
        self.classify = job.get("task") == "image-classification"
        if self.classify:
            self.emb = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(base_options=base))
        else:
            self.emb = vision.ImageEmbedder.create_from_options(vision.ImageEmbedderOptions(base_options=base))
        self.mp = mp
        self.info = {"runtime": f"mediapipe {mp.__version__}", "threads_note": "MediaPipe has no thread option"}

    def set_images(self, images: list) -> None:
        self.images = [self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=im) for im in images]

    def embed(self, i: int):
        import numpy as np

        if self.classify:
            return _dense(self.emb.classify(self.images[i]).classifications[0].categories)
        res = self.emb.embed(self.images[i])
        return np.asarray(res.embeddings[0].embedding, dtype=np.float32)

    def close(self) -> None:
        self.emb.close()


class _TorchRunner(_Runner):
    def _setup_torch(self, threads: int) -> Any:
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        return torch


class TransformersRunner(_TorchRunner):
    """The transformers route: image processor, then the model, pooled vector."""

    def __init__(self, job: dict) -> None:
        super().__init__()
        torch = self._setup_torch(job["threads"])
        import transformers
        from PIL import Image as PILImage
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        ckpt = job["checkpoint"]
        cfg = AutoConfig.from_pretrained(ckpt)
        self.torch = torch
        self.pil = PILImage
        self.pipe = None
        if job.get("task") == "image-classification":
            from transformers import pipeline

            # The pipeline's own stages, timed apart; postprocess returns every class.
            self.pipe = pipeline("image-classification", model=ckpt)
            self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
            self.info = {"runtime": f"torch {torch.__version__} eager, transformers {transformers.__version__}",
                         "route": "pipeline('image-classification'): preprocess, _forward, postprocess",
                         "checkpoint": str(ckpt)}
            return
        self.processor = AutoImageProcessor.from_pretrained(ckpt)
        if cfg.model_type in ("clip", "clip_vision_model"):
            from transformers import CLIPVisionModelWithProjection

            self.model = CLIPVisionModelWithProjection.from_pretrained(ckpt).eval()
            self.pick = lambda out: out.image_embeds
            route = "CLIPVisionModelWithProjection.image_embeds"
        else:
            self.model = AutoModel.from_pretrained(ckpt).eval()
            # what pipeline("image-feature-extraction", pool=True) returns
            self.pick = lambda out: out.pooler_output if getattr(out, "pooler_output", None) is not None \
                else out.last_hidden_state[:, 0]
            route = f"AutoModel({type(self.model).__name__}).pooler_output"
        self.torch = torch
        self.pil = PILImage
        self.info = {"runtime": f"torch {torch.__version__} eager, transformers {transformers.__version__}",
                     "route": route, "checkpoint": str(ckpt)}

    def set_images(self, images: list) -> None:
        self.pils = [self.pil.fromarray(im) for im in images]

    def embed(self, i: int):
        if self.pipe is not None:
            return self._classify(i)
        t0 = time.perf_counter_ns()
        inputs = self.processor(images=self.pils[i], return_tensors="pt")
        self.last_pre_ns = time.perf_counter_ns() - t0
        with self.torch.inference_mode():
            out = self.model(**inputs)
        return self.pick(out)[0].numpy()

    def _classify(self, i: int):
        import numpy as np

        pipe = self.pipe
        t0 = time.perf_counter_ns()
        inputs = pipe.preprocess(self.pils[i])
        t1 = time.perf_counter_ns()
        with self.torch.inference_mode():
            out = pipe._forward(inputs)
        t2 = time.perf_counter_ns()
        res = pipe.postprocess(out, top_k=len(self.labels))
        self.last_pre_ns, self.last_post_ns = t1 - t0, time.perf_counter_ns() - t2
        index = {}
        for k, lab in enumerate(self.labels):
            index.setdefault(lab, []).append(k)
        v = np.zeros(len(self.labels), np.float32)
        for r in res:  # labels may repeat: fill their classes in order
            v[index[r["label"]].pop(0)] = r["score"]
        return v


class TorchEfficientNetRunner(_TorchRunner):
    """PyTorch eager of the shipped EfficientNet-Lite0 (its converter's own source and preprocessing)."""

    def __init__(self, job: dict) -> None:
        super().__init__()
        torch = self._setup_torch(job["threads"])
        from edge_embedder.convert import efficientnet_lite0 as enl

        self.enl = enl
        classify = job.get("task") == "image-classification"
        self.model = enl.build_classifier() if classify else enl.build_embedder()
        self.torch = torch
        self.info = {"runtime": f"torch {torch.__version__} eager",
                     "route": "edge_embedder.convert.efficientnet_lite0." + ("build_classifier" if classify
                                                                            else "build_embedder")}

    def embed(self, i: int):
        t0 = time.perf_counter_ns()
        x = self.torch.from_numpy(self.enl.preprocess(self.images[i]))
        self.last_pre_ns = time.perf_counter_ns() - t0
        with self.torch.inference_mode():
            return self.model(x)[0].numpy()


class OnnxRuntimeRunner(_Runner):
    """A bare ONNX Runtime session, fed the way a user without edge_embedder would."""

    def __init__(self, job: dict) -> None:
        super().__init__()
        import numpy as np
        import onnxruntime as ort

        from edge_embedder.metadata import from_onnx_props

        data = Path(job["model"]).read_bytes()
        so = ort.SessionOptions()
        so.intra_op_num_threads = job["threads"]
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        md = from_onnx_props(self.sess.get_modelmeta().custom_metadata_map)
        norm = md.inputs[0].normalization if md is not None and md.inputs else None
        inp = self.sess.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        self.nchw = shape[1] == 3
        self.h, self.w = (shape[2], shape[3]) if self.nchw else (shape[1], shape[2])
        self.float_in = "float" in inp.type
        mean = np.asarray(norm.mean if norm else (0.0,), np.float32)
        std = np.asarray(norm.std if norm else (1.0,), np.float32)
        self.scale, self.offset = 1.0 / std, -mean / std
        self.name = inp.name
        self.np = np
        self.info = {"runtime": f"onnxruntime {ort.__version__}", "route": "cv2.resize + numpy normalize + session.run"}

    def embed(self, i: int):
        import cv2

        np = self.np
        t0 = time.perf_counter_ns()
        x = cv2.resize(self.images[i], (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        if self.float_in:
            x = x.astype(np.float32) * self.scale + self.offset
        x = x[None]
        if self.nchw:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        self.last_pre_ns = time.perf_counter_ns() - t0
        return self.sess.run(None, {self.name: x})[0].reshape(-1)


RUNNERS: dict[str, Callable[[dict], _Runner]] = {
    "edge_embedder": EdgeEmbedderRunner,
    "mediapipe": MediaPipeRunner,
    "transformers": TransformersRunner,
    "torch-efficientnet-lite0": TorchEfficientNetRunner,
    "onnxruntime": OnnxRuntimeRunner,
}


# -- main -------------------------------------------------------------------------


def run(job: dict) -> dict:
    """Load, first embedding, warm-up, timed runs, accuracy vectors; see the module doc."""
    import numpy as np

    n_steps = 0

    def step() -> None:
        nonlocal n_steps
        n_steps += 1
        _emit(f"P {n_steps}")

    lat_paths = list(job["images"])
    acc_paths = list(job.get("accuracy_images") or []) if job.get("vectors_out") else []
    first = _load_images(lat_paths[:1])
    t_decoded = time.monotonic_ns()
    runner = RUNNERS[job["backend"]](job)
    t_loaded = time.monotonic_ns()
    runner.set_images(first)
    runner.embed(0)
    t_first = time.monotonic_ns()
    step()
    # every image decoded once, after the cold start and outside every timing
    runner.set_images(first + _load_images(lat_paths[1:] + acc_paths))
    n_lat = len(lat_paths)

    total, pre, post = [], [], []
    interrupted = False
    try:
        for k in range(job["warmup"]):
            runner.embed(k % n_lat)
            step()
        for k in range(job["runs"]):
            runner.last_pre_ns = runner.last_post_ns = None
            t0 = time.perf_counter_ns()
            runner.embed(k % n_lat)
            t = time.perf_counter_ns() - t0
            if runner.last_pre_ns is not None:
                pre.append(runner.last_pre_ns)
            if runner.last_post_ns is not None:
                post.append(runner.last_post_ns)
            total.append(t)
            step()
    except KeyboardInterrupt:  # Ctrl-C: report the runs measured so far
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not lose them
        interrupted = True
        pre = pre[: len(total)]
        post = post[: len(total)]
        acc_paths = []

    if acc_paths:
        vecs = []
        for i in range(len(acc_paths)):
            vecs.append(np.asarray(runner.embed(n_lat + i), dtype=np.float32).reshape(-1))
            step()
        np.save(job["vectors_out"], np.stack(vecs))
    runner.close()

    rss_bytes = _peak_rss_bytes()
    return {
        "t_process_ns": T_PROCESS,
        "t_first_embedding_ns": t_first,
        "startup_ms": {
            "python_start_and_decode_first_image": (t_decoded - T_PROCESS) / 1e6,
            "import_and_load": (t_loaded - t_decoded) / 1e6,
            "first_embedding": (t_first - t_loaded) / 1e6,
        },
        "total_ns": total,
        "preprocess_ns": pre if len(pre) == len(total) else [],
        "postprocess_ns": post if len(post) == len(total) else [],
        "peak_rss_bytes": rss_bytes,
        "vectors": job.get("vectors_out") if acc_paths else None,
        "info": runner.info,
        "interrupted": interrupted,
    }


def _peak_rss_bytes() -> int:
    """This process' peak resident set size.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this
    program's own address space. Not ``getrusage().ru_maxrss``: Linux carries
    the parent's RSS at fork into the child's ``ru_maxrss`` across ``exec``,
    so a worker spawned by a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024  # macOS: bytes, Linux: KiB


def main(argv: Optional[list] = None) -> int:
    global _out
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    # Runtimes (LiteRT, MediaPipe) print on stdout: keep the real stdout for the protocol only.
    _out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = run(job)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # reported as a failed row, never a traceback
        msg = " ".join(str(exc).split()) or type(exc).__name__
        _emit(f"F {type(exc).__name__}: {msg[:500]}")
        return 3
    _emit("R " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
