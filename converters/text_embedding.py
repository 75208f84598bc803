"""The ``text-embedding`` task: token ids in, one embedding head out (CLIP text towers).

Export: one int32 input ``[1, L]`` of token ids (TFLite: litert-torch; ONNX:
torch.onnx dynamo with a dynamic batch axis, ``[batch, L]``) and one float32
output ``[1, N]``, no attention mask: CLIP's text transformer is causal and
pools at the end-of-text token (the first one, or ``argmax(ids)`` for configs
with ``eos_token_id == 2``; either position is computed in the graph), so the
padding after it cannot change the vector.

Quantization: ``fp16`` float16 weights (fully-connected layers and the token
table); ``dynamic-int8`` int8 weights, activations quantized at run time;
``int8`` static int8 for the weight-bearing matmuls only, calibrated on
captions built from CLIP's prompt templates and labels that are not in the
parity set (TFLite: fully-connected layers int8 weights and activations, the
token table int8 weights, attention / normalization / pooling float; ONNX:
QDQ on MatMul / Gemm). Token ids stay int32 in every mode: there is no
"raw pixel" boundary to fold for text.

Metadata: the checkpoint's ``tokenizer.json`` as an associated file of the
input tensor, its framing as ``edge_embedder.tokenizer`` (max length, bos /
eos / pad ids, lowercase, pooling, and the ids of a few known texts that the
runtime re-encodes at load time), the embedding-space id and the logit scale.

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

__all__ = ["TextEmbeddingTask", "PARITY_CAPTIONS", "calibration_captions", "text_parity_report", "INPUT_NAME",
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
                                                            lowercase=c["lowercase"]))


def _ids(lm: LoadedTextModel, texts: list[str]) -> np.ndarray:
    """``[n, L]`` int32 ids of ``texts`` as the runtime will feed them."""
    return np.stack([e.ids for e in _tokenizer(lm).encode_batch(texts)]).astype(np.int32)


def _export_tflite(cfg: ArchConfig, lm: LoadedTextModel, quant: str, calib: Optional[list[np.ndarray]],
                   progress: Callable[[str], None]) -> bytes:
    import torch

    from . import litert_export as le

    data = lm.float_exports.get("tflite")
    if data is None:
        sample = torch.from_numpy(_ids(lm, [PARITY_CAPTIONS["seed: cat"]]))
        progress(f"exporting float32, int32 token ids [1, {lm.max_length}] (litert-torch) ...")
        data = lm.float_exports["tflite"] = le.export_float32(lm.module, sample)
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
        data = le.quantize_int8_matmuls(data, calib)
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
        sample = torch.from_numpy(_ids(lm, [PARITY_CAPTIONS["seed: cat"], PARITY_CAPTIONS["long"]]))
        progress(f"exporting float32, int32 token ids [batch, {length}] (torch.onnx, dynamo, dynamic batch) ...")
        data = oe.export_onnx(lm.module, sample, INPUT_NAME, cfg.head_name)
        oe.check_loads(data, np.int32, (1, length))
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
            description=(f"int32 token ids [1, {lm.max_length}]: bos {tok['bos_id']}, the text's tokens, "
                         f"eos {tok['eos_id']}, then pad {tok['pad_id']}; made by the packed {TOKENIZER_FILE} "
                         f"(truncated to {lm.max_length} ids, end-of-text kept last); no attention mask"),
            associated_files=[AssociatedFile(
                name=TOKENIZER_FILE, type="UNKNOWN",
                description=f"Hugging Face tokenizers file of the checkpoint's {lm.source.get('tokenizer', 'tokenizer')} "
                            f"(framing in the {TOKENIZER_KEY} custom metadata)",
            )],
        )],
        outputs=[TensorMetadata(name=cfg.head_name, description=cfg.head_description, content="feature")],
        custom_metadata=custom,
        files=[(TOKENIZER_FILE, lm.tokenizer_json)],
    )


def text_parity_report(model_path: str | os.PathLike, texts: dict[str, str], reference: TextReference,
                       floor: float, num_threads: int = 2) -> dict[str, Any]:
    """Embed ``texts`` with the model file through ``TextEmbedder``; compare ids and vectors with ``reference``."""
    from edge_embedder import BaseOptions, TextEmbedder, TextEmbedderOptions

    opts = TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(model_path), num_threads=num_threads))
    rows = []
    with TextEmbedder.create_from_options(opts) as emb:
        for (name, text), ref, ref_ids in zip(texts.items(), reference.vectors, reference.ids):
            enc = emb.tokenizer.encode(text)
            res = emb.embed(text)
            vec = np.asarray(res.embeddings[0].embedding, np.float32)
            ids_equal = enc.ids.tolist() == list(ref_ids)
            cos, mad = compare_vectors(vec, ref)
            ok = bool(ids_equal and np.isfinite(cos) and cos >= floor)
            detail = (f"{res.token_count} tokens{' (truncated)' if res.truncated else ''}, ids "
                      f"{'equal' if ids_equal else 'DIFFER'}, cosine {cos:.6f}, max abs diff {mad:.3g}")
            rows.append({"name": name, "text": text, "tokens": res.token_count, "truncated": res.truncated,
                         "ids_equal": ids_equal, "cosine": cos, "max_abs_diff": mad, "detail": detail, "passed": ok})
    return cosine_report(rows, floor, f"token ids equal the source tokenizer's and cosine >= {floor}", "texts")


class TextEmbeddingTask(ConversionTask):
    name = "text-embedding"
    runtime_task = "text_embedder"
    input_kind = "text"
    calibration_folder = False

    def calibration(self, lm: Any, source: Optional[str]) -> list[Any]:
        ids = _ids(lm, calibration_captions())
        return [ids[i : i + 1] for i in range(len(ids))]

    def parity_inputs(self) -> dict[str, Any]:
        return dict(PARITY_CAPTIONS)

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
        lines.append(f"  min cosine {report['min_cosine']:.6f}: {'PASS' if report['passed'] else 'FAIL'}")
        return "\n".join(lines)


register_task(TextEmbeddingTask())
