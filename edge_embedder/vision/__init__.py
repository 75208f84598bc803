"""Vision: image decoding, preprocessing recipes and the vision tasks.

Public here (besides the task classes re-exported by ``edge_embedder``):
:class:`Recipe` / :data:`DEFAULT_RECIPE` (how an image becomes a model's
input, as data in the model file) and :class:`Preprocessor` (which carries a
recipe out, e.g. to make calibration tensors exactly as the runtime will).
"""

from ..core.recipe import DEFAULT_RECIPE, Recipe
from .image import Image, ImageLike
from .image_classifier import ImageClassifier, ImageClassifierOptions
from .image_embedder import ImageEmbedder, ImageEmbedderOptions
from .preprocess import Preprocessor
from .processing_options import ImageProcessingOptions, RectF

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
]
