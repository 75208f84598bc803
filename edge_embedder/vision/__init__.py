"""Vision: image decoding, preprocessing recipes and the vision tasks.

Public here (besides the task classes re-exported by ``edge_embedder``):
:class:`Recipe` / :data:`DEFAULT_RECIPE` (how an image becomes a model's
input, as data in the model file), :class:`Preprocessor` (which carries a
recipe out, e.g. to make calibration tensors exactly as the runtime will) and
shrink-on-load (:func:`decode_for_model`: a JPEG decoded at the smallest DCT
scale a recipe allows).
"""

from ..core.recipe import DEFAULT_RECIPE, Recipe
from .image import Image, ImageLike
from .image_classifier import ImageClassifier, ImageClassifierOptions
from .image_embedder import ImageEmbedder, ImageEmbedderOptions
from .preprocess import Preprocessor
from .processing_options import ImageProcessingOptions, RectF
from .shrink import JPEG_SCALES, DecodeInfo, choose_scale, decode_for_model, decode_tag, recommended_safety

__all__ = [
    "Image",
    "ImageLike",
    "ImageEmbedder",
    "ImageEmbedderOptions",
    "ImageClassifier",
    "ImageClassifierOptions",
    "ImageProcessingOptions",
    "RectF",
    "Recipe",
    "DEFAULT_RECIPE",
    "Preprocessor",
    "DecodeInfo",
    "decode_for_model",
    "choose_scale",
    "recommended_safety",
    "decode_tag",
    "JPEG_SCALES",
]
