"""Per-call timing record, public on every task as ``last_timings``.

Three ``time.perf_counter_ns()`` readings per call (a few hundred nanoseconds
in all), so it is always on: benchmarks read it instead of patching internals.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timings"]


@dataclass(frozen=True)
class Timings:
    """How the last call's time was spent, in nanoseconds.

    Attributes:
      preprocess_ns: input to the model's tensor (resize, normalize, tokenize), written in place.
      inference_ns: the interpreter / session run, output copies included.
      postprocess_ns: dequantize, L2, quantize, scores and labels.
    """

    preprocess_ns: int
    inference_ns: int
    postprocess_ns: int

    @property
    def total_ns(self) -> int:
        return self.preprocess_ns + self.inference_ns + self.postprocess_ns

    @property
    def preprocess_ms(self) -> float:
        return self.preprocess_ns / 1e6

    @property
    def inference_ms(self) -> float:
        return self.inference_ns / 1e6

    @property
    def postprocess_ms(self) -> float:
        return self.postprocess_ns / 1e6

    @property
    def total_ms(self) -> float:
        return self.total_ns / 1e6
