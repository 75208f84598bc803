"""Which ``[batch, length]`` shape each text runs at: the one place a text task chooses it.

A text tower's vector only depends on the ids up to the end-of-text token
(causal attention, pooled at that token), so a text of ``n`` ids (start and
end of text included) runs at any length ``>= n`` with the same result; the
work grows with the length. :func:`plan_calls` picks, from the shapes a file
offers (:class:`~edge_embedder.core.contract.TextShapes`):

* one text: the smallest length that holds its ids (a dynamic sequence axis:
  exactly ``n``);
* several texts (``embed_batch``, zero-shot labels), when the file has a
  dynamic batch axis: texts sorted by length, ``batch_size`` per call, each
  call as long as its longest text (the smallest offered length that holds it);
* several texts and fixed batch shapes (a ``.tflite`` with batch signatures
  ``(B, l)``): the texts whose smallest fitting batch shape is ``(B, l)`` run
  ``B`` per call; a last partial group runs padded in one call when it fills
  at least three quarters of the batch, else one text per call. (A heuristic
  from an exploratory measurement on the CLIP B/32 text tower, fp32 and
  dynamic int8: one full batch call cost about 0.7x of the same texts one by
  one, so padding more than a quarter of its rows loses the gain.)

Nothing here knows a runtime: backends say which shapes they run
(``Backend.input_shapes``), the contract checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..core.contract import TextShapes

__all__ = ["Call", "length_for", "plan_calls"]


@dataclass(frozen=True)
class Call:
    """One model call: the id array's ``shape`` and which texts fill its rows (padding rows follow)."""

    shape: tuple[int, int]
    rows: tuple[int, ...]


def length_for(n: int, shapes: TextShapes) -> int:
    """The shortest sequence length the model runs that holds ``n`` ids."""
    if shapes.dynamic_length:
        return max(2, min(n, shapes.max_length))
    for length in shapes.lengths:
        if length >= n:
            return length
    return shapes.max_length


def _batch_shape_for(n: int, shapes: TextShapes, batch_size: int) -> tuple[int, int] | None:
    for b, length in shapes.batches:
        if length >= n and b <= batch_size:
            return b, length
    return None


def plan_calls(token_counts: Sequence[int], shapes: TextShapes, batch_size: int = 1) -> list[Call]:
    """The calls that embed texts of ``token_counts`` ids each, at most ``batch_size`` texts per call.

    Every index of ``token_counts`` is in exactly one call.
    """
    n_texts = len(token_counts)
    if n_texts == 0:
        return []
    if batch_size <= 1 or n_texts == 1 or (not shapes.dynamic_batch and not shapes.batches):
        return [Call((1, length_for(n, shapes)), (i,)) for i, n in enumerate(token_counts)]
    order = sorted(range(n_texts), key=lambda i: token_counts[i])
    calls: list[Call] = []
    if shapes.dynamic_batch:
        for start in range(0, n_texts, batch_size):
            group = order[start : start + batch_size]
            calls.append(Call((len(group), length_for(max(token_counts[i] for i in group), shapes)), tuple(group)))
        return calls
    groups: dict[tuple[int, int], list[int]] = {}
    singles: list[int] = []
    for i in order:
        fit = _batch_shape_for(token_counts[i], shapes, batch_size)
        (singles if fit is None else groups.setdefault(fit, [])).append(i)
    for (b, length), members in groups.items():
        full = len(members) - len(members) % b
        calls += [Call((b, length), tuple(members[k : k + b])) for k in range(0, full, b)]
        rest = members[full:]
        if rest and 4 * len(rest) >= 3 * b:
            calls.append(Call((b, length), tuple(rest)))
        else:
            singles += rest
    calls += [Call((1, length_for(token_counts[i], shapes)), (i,)) for i in sorted(singles)]
    return calls
