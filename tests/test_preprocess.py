"""Normalization in the preprocessing pass: every uint8 level maps to the correctly rounded float32 value."""

from __future__ import annotations

import numpy as np
import pytest

from edge_embedder.metadata import NormalizationOptions
from edge_embedder.vision import DEFAULT_RECIPE, Preprocessor


@pytest.mark.parametrize("mean,std", [
    ((127.0,), (128.0,)),  # the shipped EfficientNet-Lite0: the fast exact affine pass
    ((0.0,), (1.0,)),
    ((128.0, 128.0, 128.0), (64.0, 64.0, 64.0)),
    ((127.5,), (127.5,)),  # not exact in an affine pass: the lookup table
    ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # per channel (ImageNet)
])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_every_level_is_the_float64_value_rounded_once(mean, std, layout):
    # A 16x16 image holding every level in every channel, stretched 1:1 (no resampling changes).
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = np.stack([levels, levels[::-1], levels.T], axis=2)
    pre = Preprocessor(16, 16, DEFAULT_RECIPE, NormalizationOptions(mean, std), layout=layout)
    shape = (1, 16, 16, 3) if layout == "NHWC" else (1, 3, 16, 16)
    got = np.zeros(shape, np.float32)
    pre.write(img, None, got)
    if layout == "NCHW":
        got = got.transpose(0, 2, 3, 1)
    want = ((img.astype(np.float64) - np.broadcast_to(mean, (3,))) / np.broadcast_to(std, (3,))).astype(np.float32)
    np.testing.assert_array_equal(got[0], want)
