"""The ``text-embedding`` task: token ids in, one embedding head out (CLIP and SigLIP text towers).

Export: int32 token ids in, one float32 embedding ``[B, N]`` out, no
attention mask. SigLIP's text transformer reads every position and was
trained on text padded to its full length L without a mask: its file has the
one shape ``[1, L]`` (TFLite) / ``[batch, L]`` (ONNX), and its framing entry
says ``padding: "max_length"``. CLIP's text transformer is causal and pools at the
end-of-text token (the first one, or ``argmax(ids)`` for configs with
``eos_token_id == 2``; either position is computed in the graph), so the
padding after it cannot change the vector, and a text can run at any length
that holds its ids. So that short texts cost what their length costs:

* TFLite: one signature per shape (:func:`tflite_shapes`): ``[1, L]`` first
  (subgraph 0, what single-signature readers see), then ``[1, l]`` for the
  lengths in :data:`TFLITE_LENGTHS` below L, then the batch shapes
  :data:`TFLITE_BATCHES`; the subgraphs share one copy of the weights (about
  +1% file size for the CLIP B/32 text tower). litert-torch 0.10 cannot
  export a dynamic sequence or batch axis for this tower (transformers'
  causal mask uses ``arange`` of the length: "'<=' not supported between
  instances of 'int' and 'Node'"; a mask built without it fails in its JAX
  lowering: "broadcast_in_dim shape must have every element be nonnegative").
* ONNX: torch.onnx dynamo with dynamic batch and sequence axes, ``[batch, seq]``.

Quantization: ``fp16`` float16 weights (fully-connected layers and the token
table); ``dynamic-int8`` int8 weights, activations quantized at run time;
``int8`` static int8 for the weight-bearing matmuls only, calibrated on
captions built from CLIP's prompt templates and labels that are not in the
parity set (TFLite: fully-connected layers int8 weights and activations, the
token table int8 weights, attention / normalization / pooling float; ONNX:
QDQ on MatMul / Gemm). Token ids stay int32 in every mode: there is no
"raw pixel" boundary to fold for text.

Metadata: the checkpoint's ``tokenizer.json`` (SigLIP: its ``spiece.model``
rebuilt as one) as an associated file of the input tensor, its framing as
``edge_embedder.tokenizer`` (max length, bos / eos / pad ids, lowercase,
pooling; SigLIP: no bos, ``eos_if_absent``, ``padding``; and the ids of a few
known texts that the runtime re-encodes at load time), the embedding-space
id, the logit scale and (SigLIP) the logit bias.

Parity: the file through ``edge_embedder.TextEmbedder`` (its own tokenizer,
read back from the file) against transformers' ``get_text_features`` on the
checkpoint's own tokenizer, per caption: the ids must equal the source
tokenizer's, and the cosine must reach the recipe's floor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .architectures import UNKNOWN_LICENSE
from .errors import ExportError
from .registry import ArchConfig, LoadedTextModel, TextReference
from .tasks import ConversionTask, compare_vectors, contrastive_metadata, cosine_report, register_task, source_metadata

__all__ = ["TextEmbeddingTask", "PARITY_CAPTIONS", "FULL_LENGTH_CAPTIONS", "calibration_captions", "text_parity_report", "INPUT_NAME",
           "TOKENIZER_FILE"]

INPUT_NAME = "input_ids"
TOKENIZER_FILE = "tokenizer.json"

#: The parity report's captions: the seed's three, then short, punctuation, unicode, long (truncated) and empty.
PARITY_CAPTIONS = {
    "seed: cat": "a photo of a cat",
    "seed: dog": "a photo of a dog",
    "seed: car": "a photo of a car",
    "short": "cat",
    "punctuation": "What's that?! A dog -- or a cat... (maybe both); don't ask.",
    "unicode": "Ein Hund läuft über die Straße, café crème; 猫が寝ている 🐱🚗",
    "long": (
        "On a quiet morning in the old harbour town, a small grey cat with white paws walked slowly along the "
        "stone wall above the water, stopping now and then to watch the fishing boats come back with their nets, "
        "while children on bicycles rang their bells, an old man sold fresh bread from a wooden cart, and the "
        "smell of coffee drifted out of every open window on the narrow street that led down to the sea, where "
        "gulls argued over scraps and the tide slowly turned."
    ),
    "empty": "",
}

#: The lengths (ids, start and end of text included) whose parity is checked on both sides of every
#: bucket boundary: a text of exactly l ids and one of l + 1 (``"cat dog cat ..."``: one id per word).
BOUNDARY_LENGTHS = (8, 12, 16, 24, 32, 48, 64, 77)
#: Towers that run at their full length only (SigLIP) have no boundaries; their report checks these instead.
FULL_LENGTH_CAPTIONS = {
    **PARITY_CAPTIONS,
    "capitals": "A PHOTO OF 3 CATS, 2 DOGS & 1 CAR -- NO.42!",
    "eos string": "a photo of a cat </s>",
}
PARITY_CAPTIONS.update({f"{n} ids": " ".join((["cat", "dog"] * 40)[: n - 2])
                        for length in BOUNDARY_LENGTHS for n in (length, length + 1)})

#: Sequence lengths a text .tflite offers at batch 1 below its full length (one signature each); the
#: runtime runs the shortest that holds a text's ids.
TFLITE_LENGTHS = (8, 12, 16, 24, 32, 48, 64)
#: Batch signatures ``(batch, length)``: ``embed_batch`` and zero-shot labels run eight texts per call.
TFLITE_BATCHES = ((8, 16), (8, 32))

#: Labels for the int8 calibration captions: none of them is in a parity caption.
_CALIBRATION_LABELS = ("airplane", "bird", "deer", "frog", "horse", "ship", "truck", "bicycle", "flower", "tree",
                       "mountain", "street", "teapot", "guitar", "bridge", "lighthouse")
_N_CALIBRATION = 64

_QUANT_TEXT = {
    "none": "float32",
    "fp16": "float16 weights (fully-connected layers and token table), float32 compute",
    "dynamic-int8": "dynamic-range int8 (int8 weights, activations quantized at run time)",
    "int8": ("static int8 for the weight-bearing matmuls (int8 weights and calibrated int8 activations), "
             "int8 token table, attention and normalization in float; int32 token ids"),
}


def calibration_captions(n: int = _N_CALIBRATION) -> list[str]:
    """``n`` captions from OpenAI's ImageNet prompt templates and labels disjoint from the parity captions."""
    from edge_embedder.zero_shot import OPENAI_IMAGENET_TEMPLATES

    t, labels = OPENAI_IMAGENET_TEMPLATES, _CALIBRATION_LABELS
    return [t[(i * 7) % len(t)].format(labels[i % len(labels)]) for i in range(n)]


def _tokenizer(lm: LoadedTextModel) -> Any:
    from edge_embedder.text import ClipTokenizer, TokenizerConfig

    c = lm.tokenizer
    return ClipTokenizer(lm.tokenizer_json, TokenizerConfig(max_length=c["max_length"], bos_id=c["bos_id"],
                                                            eos_id=c["eos_id"], pad_id=c["pad_id"],
                                                            lowercase=c["lowercase"],
                                                            eos_if_absent=bool(c.get("eos_if_absent", False))))


def _ids(lm: LoadedTextModel, texts: list[str]) -> np.ndarray:
    """``[n, L]`` int32 ids of ``texts`` as the runtime will feed them."""
    return np.stack([e.ids for e in _tokenizer(lm).encode_batch(texts)]).astype(np.int32)


def tflite_shapes(max_length: int, full_length: bool = False) -> list[tuple[int, int]]:
    """The ``(batch, length)`` of every signature of a text .tflite, subgraph 0 (``[1, L]``) first.

    ``full_length``: the tower reads every position (SigLIP): ``[1, L]`` only.
    """
    if full_length:
        return [(1, max_length)]
    shapes = [(1, max_length)] + [(1, n) for n in TFLITE_LENGTHS if n < max_length]
    return shapes + [(b, n) for b, n in TFLITE_BATCHES if n <= max_length]


def signature_key(batch: int, length: int) -> str:
    return f"ids_{batch}x{length}"


def _fit(ids: np.ndarray, length: int, eos: int) -> np.ndarray:
    """``ids`` (rows of L ids) cut to ``length``; rows whose text did not fit end in end-of-text (truncation)."""
    out = ids[:, :length].copy()
    cut = ~(out == eos).any(axis=1)
    out[cut, -1] = eos
    return out


def _shaped(ids: np.ndarray, shape: tuple[int, int], eos: int) -> list[np.ndarray]:
    """``ids`` (``[n, L]``) as arrays of ``shape``: one row each at batch 1, ``batch`` rows per array otherwise."""
    batch, length = shape
    rows = _fit(ids, length, eos)
    if batch == 1:
        return [rows[i : i + 1] for i in range(len(rows))]
    reps = -(-batch // len(rows))
    rows = np.concatenate([rows] * reps) if reps > 1 else rows
    return [rows[k : k + batch] for k in range(0, len(rows) - batch + 1, batch)]


def _export_tflite(cfg: ArchConfig, lm: LoadedTextModel, quant: str, calib: Optional[list[np.ndarray]],
                   progress: Callable[[str], None]) -> bytes:
    import torch

    from . import litert_export as le

    data = lm.float_exports.get("tflite")
    eos = int(lm.tokenizer["eos_id"])
    if data is None:
        ids = _ids(lm, [PARITY_CAPTIONS["seed: cat"], PARITY_CAPTIONS["long"]])
        shapes = tflite_shapes(lm.max_length, lm.full_length)
        if len(shapes) == 1:
            progress(f"exporting float32, int32 token ids [1, {lm.max_length}] (every text padded to the full "
                     "length: the tower reads every position) (litert-torch) ...")
        else:
            progress(f"exporting float32, int32 token ids, {len(shapes)} signatures sharing the weights: "
                     f"{', '.join(f'[{b}, {n}]' for b, n in shapes)} (litert-torch) ...")
        signatures = [(signature_key(*shape), torch.from_numpy(_shaped(ids, shape, eos)[0])) for shape in shapes]
        data = lm.float_exports["tflite"] = le.export_signatures(lm.module, signatures)
    if quant == "fp16":
        progress("quantizing: float16 weights, token table included (ai-edge-quantizer) ...")
        data = le.quantize_fp16_weights(data, ops=(*le._WEIGHT_OPS, "EMBEDDING_LOOKUP"))
    elif quant == "dynamic-int8":
        progress("quantizing: dynamic-range int8 (ai-edge-quantizer) ...")
        data = le.quantize_dynamic_int8(data)
    elif quant == "int8":
        assert calib is not None  # convert() builds the calibration captions for int8
        progress(f"quantizing: static int8 fully-connected layers, int8 token table, calibrating on {len(calib)} "
                 "captions (ai-edge-quantizer) ...")
        ids = np.concatenate(calib)
        # Every subgraph has its own activation ranges, each calibrated on every caption: with 16 captions
        # for the shorter shapes the tiny tower's [1, 24] / [1, 48] rows fell to cosine 0.85-0.90.
        per_signature = {signature_key(*shape): _shaped(ids, shape, eos)
                         for shape in tflite_shapes(lm.max_length, lm.full_length)}
        data = le.quantize_int8_matmuls(data, per_signature)
    io = le.io_details(data)
    if [d["dtype"] for d in io["inputs"]] != ["int32"] or [d["dtype"] for d in io["outputs"]] != ["float32"]:
        raise ExportError(f"expected one int32 input and one float32 output, got {io}")
    return data


def _export_onnx(cfg: ArchConfig, lm: LoadedTextModel, quant: str, calib: Optional[list[np.ndarray]],
                 progress: Callable[[str], None]) -> bytes:
    import torch

    from . import onnx_export as oe

    length = lm.max_length
    data = lm.float_exports.get("onnx")
    if data is None:
        ids = _ids(lm, [PARITY_CAPTIONS["seed: cat"], PARITY_CAPTIONS["long"]])
        if lm.full_length:
            progress(f"exporting float32, int32 token ids [batch, {length}] (torch.onnx, dynamo, dynamic batch axis; "
                     "every text padded to the full length) ...")
            data = oe.export_onnx(lm.module, torch.from_numpy(ids), INPUT_NAME, cfg.head_name)
            oe.check_loads(data, np.int32, (1, length))
        else:
            sample = torch.from_numpy(_fit(ids, min(16, length - 1), int(lm.tokenizer["eos_id"])))
            progress(f"exporting float32, int32 token ids [batch, seq <= {length}] (torch.onnx, dynamo, dynamic batch "
                     "and sequence axes) ...")
            data = oe.export_onnx(lm.module, sample, INPUT_NAME, cfg.head_name, seq_axis=(2, length))
            oe.check_loads(data, np.int32, (1, length))
            oe.check_loads(data, np.int32, (1, 2))
        lm.float_exports["onnx"] = data
    if quant == "fp16":
        progress("quantizing: float16 weights ...")
        data = oe.fp16_weights(data)
    elif quant == "dynamic-int8":
        progress("quantizing: dynamic int8 (onnxruntime) ...")
        data = oe.quantize_dynamic_int8(data)
    elif quant == "int8":
        assert calib is not None
        progress(f"quantizing: static int8 QDQ (MatMul/Gemm), calibrating on {len(calib)} captions (onnxruntime) ...")
        data = oe.quantize_static_int8(data, INPUT_NAME, calib, op_types=("MatMul", "Gemm"))
    names = oe.check_loads(data, np.int32, (2, length))
    if names != [cfg.head_name]:
        raise ExportError(f"ONNX outputs are {names}, expected [{cfg.head_name!r}]")
    return data


def build_metadata(cfg: ArchConfig, lm: LoadedTextModel, fmt: str, quant: str, license: Optional[str]) -> Any:
    from edge_embedder.metadata import TOKENIZER_KEY, AssociatedFile, ModelMetadata, TensorMetadata

    ckpt = str(lm.source.get("checkpoint", "?"))
    short = Path(ckpt.rstrip("/")).name or ckpt
    tok = lm.tokenizer
    from edge_embedder.text import known_encodings

    # known_encodings: a few texts' ids, which the runtime re-encodes when it opens the file (a swapped
    # or damaged tokenizer.json is then a MetadataError before the first call).
    entry = {"file": TOKENIZER_FILE, **tok, "known_encodings": known_encodings(_tokenizer(lm))}
    custom = [(TOKENIZER_KEY, json.dumps(entry, sort_keys=True).encode("utf-8")),
              *contrastive_metadata(lm), source_metadata(cfg, lm, fmt, quant)]
    start = f"bos {tok['bos_id']}, " if tok["bos_id"] is not None else ""
    if lm.full_length:
        framing = (f"int32 token ids [1, {lm.max_length}]: {start}the text's tokens, eos {tok['eos_id']}, then pad "
                   f"{tok['pad_id']} up to {lm.max_length} (every text padded to the full length: the tower reads "
                   f"every position and pools the last); made by the packed {TOKENIZER_FILE} (truncated to "
                   f"{lm.max_length} ids, end-of-text kept last); no attention mask. ")
    else:
        framing = (f"int32 token ids [1, {lm.max_length}]: {start}the text's tokens, eos {tok['eos_id']}, then pad "
                   f"{tok['pad_id']}; made by the packed {TOKENIZER_FILE} (truncated to {lm.max_length} ids, "
                   "end-of-text kept last); no attention mask. ")
    return ModelMetadata(
        name=f"{cfg.title} text embedder ({short}, {quant if quant != 'none' else 'fp32'})",
        description=(
            f"{cfg.title} text embedder converted from {ckpt} by edge_embedder; {_QUANT_TEXT[quant]}. "
            f"Output {cfg.head_name!r}: {cfg.head_description}, {lm.embedding_dim}-d."
        ),
        version=str(lm.source.get("revision") or "1"),
        author=f"edge_embedder converters (source checkpoint: {ckpt})",
        license=license or lm.license or UNKNOWN_LICENSE,
        inputs=[TensorMetadata(
            name=INPUT_NAME,
            description=framing + _shapes_text(fmt, lm.max_length, lm.full_length),
            associated_files=[AssociatedFile(
                name=TOKENIZER_FILE, type="UNKNOWN",
                description=(f"Hugging Face tokenizers file of the checkpoint's {lm.source.get('tokenizer', 'tokenizer')}"
                             + (" (its SentencePiece model rebuilt for the tokenizers package)"
                                if lm.source.get("tokenizer") == "SiglipTokenizer" else "")
                             + f" (framing in the {TOKENIZER_KEY} custom metadata)"),
            )],
        )],
        outputs=[TensorMetadata(name=cfg.head_name, description=cfg.head_description, content="feature")],
        custom_metadata=custom,
        files=[(TOKENIZER_FILE, lm.tokenizer_json)],
    )


def _shapes_text(fmt: str, max_length: int, full_length: bool = False) -> str:
    if full_length:
        return "One length only" + (" (ONNX: dynamic batch axis)" if fmt == "onnx" else "")
    if fmt == "tflite":
        return ("Also runs " + ", ".join(f"[{b}, {n}]" for b, n in tflite_shapes(max_length)[1:])
                + " (one signature each, shared weights): any length that holds the ids gives the same vector")
    return "Dynamic batch and sequence axes: any length that holds the ids gives the same vector"


def text_parity_report(model_path: str | os.PathLike, texts: dict[str, str], reference: TextReference,
                       floor: float, num_threads: int = 2) -> dict[str, Any]:
    """Embed ``texts`` with the model file through ``TextEmbedder``; compare ids and vectors with ``reference``."""
    from edge_embedder import BaseOptions, TextEmbedder, TextEmbedderOptions

    opts = TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(model_path), num_threads=num_threads))
    rows = []
    singles = []
    with TextEmbedder.create_from_options(opts) as emb:
        shapes = emb.model_spec.shapes
        batched = [np.asarray(r.embeddings[0].embedding, np.float32) for r in emb.embed_batch(list(texts.values()))]
        for (name, text), ref, ref_ids in zip(texts.items(), reference.vectors, reference.ids):
            enc = emb.tokenizer.encode(text)
            res = emb.embed(text)
            vec = np.asarray(res.embeddings[0].embedding, np.float32)
            singles.append(vec)
            ids_equal = enc.ids.tolist() == list(ref_ids)
            cos, mad = compare_vectors(vec, ref)
            ok = bool(ids_equal and np.isfinite(cos) and cos >= floor)
            detail = (f"{res.token_count} tokens{' (truncated)' if res.truncated else ''}, ids "
                      f"{'equal' if ids_equal else 'DIFFER'}, cosine {cos:.6f}, max abs diff {mad:.3g}")
            rows.append({"name": name, "text": text, "tokens": res.token_count, "truncated": res.truncated,
                         "ids_equal": ids_equal, "cosine": cos, "max_abs_diff": mad, "detail": detail, "passed": ok})
    report = cosine_report(rows, floor, f"token ids equal the source tokenizer's and cosine >= {floor}; embed_batch "
                           "gives the same vectors", "texts")
    # embed_batch (batch signatures / dynamic axes) against one-by-one embed and the reference.
    batch_cos = [compare_vectors(b, r)[0] for b, r in zip(batched, reference.vectors)]
    batch_diff = max(float(np.max(np.abs(b - v))) for b, v in zip(batched, singles))
    batch_ok = bool(np.isfinite(batch_cos).all() and min(batch_cos) >= floor)
    report["shapes"] = shapes.describe()
    report["batch"] = {"min_cosine": float(min(batch_cos)), "max_abs_diff_vs_embed": batch_diff, "passed": batch_ok}
    report["passed"] = bool(report["passed"] and batch_ok)
    return report


class TextEmbeddingTask(ConversionTask):
    name = "text-embedding"
    runtime_task = "text_embedder"
    input_kind = "text"
    calibration_folder = False

    def calibration(self, lm: Any, source: Optional[str]) -> list[Any]:
        ids = _ids(lm, calibration_captions())
        return [ids[i : i + 1] for i in range(len(ids))]

    def parity_inputs(self, lm: Any = None) -> dict[str, Any]:
        return dict(FULL_LENGTH_CAPTIONS if lm is not None and lm.full_length else PARITY_CAPTIONS)

    def export(self, cfg: ArchConfig, lm: Any, fmt: str, quant: str, calib: Optional[list[Any]],
               progress: Callable[[str], None]) -> bytes:
        return (_export_tflite if fmt == "tflite" else _export_onnx)(cfg, lm, quant, calib, progress)

    def metadata(self, cfg: ArchConfig, lm: Any, fmt: str, quant: str, license: Optional[str],
                 labels_locale: Optional[str] = None) -> Any:
        return build_metadata(cfg, lm, fmt, quant, license)


    def parity(self, path: Path, inputs: dict[str, Any], reference: Any, floor: Any, lm: Any) -> dict[str, Any]:
        return text_parity_report(path, inputs, reference, floor)

    def format_report(self, report: dict[str, Any]) -> str:
        lines = [f"parity vs {report['reference']} (floor {report['floor']}):",
                 f"  {'text':<14}{'tokens':>7} {'trunc':>5} {'ids':>6}{'cosine':>12}{'max|diff|':>12}  ok"]
        for r in report["texts"]:
            lines.append(f"  {r['name']:<14}{r['tokens']:>7} {'yes' if r['truncated'] else 'no':>5} "
                         f"{'equal' if r['ids_equal'] else 'DIFFER':>6}{r['cosine']:>12.6f}{r['max_abs_diff']:>12.3g}"
                         f"  {'yes' if r['passed'] else 'NO'}")
        b = report.get("batch")
        if b:
            lines.append(f"  embed_batch: min cosine {b['min_cosine']:.6f}, max |diff| vs embed {b['max_abs_diff_vs_embed']:.3g}"
                         f"  {'yes' if b['passed'] else 'NO'}")
        lines.append(f"  min cosine {report['min_cosine']:.6f}: {'PASS' if report['passed'] else 'FAIL'}")
        return "\n".join(lines)


register_task(TextEmbeddingTask())
