"""Reading image generations: rows of cluster ids, and colours through the evaluated model's palette.

A record of an image model carries ``image_shape`` ([height, width]), ``context_ids`` (SOS, then the first
rows), ``output_ids`` (the generated pixels, row-major) and ``reference_ids`` (the original's remaining
pixels). Only whole rows are used; an SOS token is recognised as the one id beyond whole rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from harness.api import ImageCodec, InputError, Metric

IMAGE_REQUIRES = ("image_shape", "context_ids", "output_ids")


@dataclass(frozen=True)
class ImageRecord:
    """One completion as pixel rows: ``context`` rows given, ``generated`` rows the decoder produced."""

    height: int
    width: int
    context: list[list[int]]
    generated: list[list[int]]
    reference: list[list[int]]


def _rows(ids: Sequence[int], width: int) -> list[list[int]]:
    ids = [int(i) for i in ids]
    return [ids[r * width : (r + 1) * width] for r in range(len(ids) // width)]


def image_record(metric: str, record: dict[str, Any], position: int) -> ImageRecord:
    shape = record.get("image_shape")
    if not (isinstance(shape, (list, tuple)) and len(shape) == 2):
        raise InputError(
            f"{metric}: record {position + 1} (prompt_id {record.get('prompt_id')!r}) has no image_shape: "
            f"{metric} scores generations of an image model, not text"
        )
    height, width = int(shape[0]), int(shape[1])
    context = list(record.get("context_ids") or [])
    if len(context) % width == 1:  # SOS + whole rows
        context = context[1:]
    return ImageRecord(
        height, width, _rows(context, width), _rows(record.get("output_ids") or [], width),
        _rows(record.get("reference_ids") or [], width),
    )  # fmt: skip


def image_records(metric: str, samples: list[dict[str, Any]]) -> list[ImageRecord]:
    return [image_record(metric, rec, i) for i, rec in enumerate(samples)]


def image_codec(metric: Metric) -> ImageCodec:
    """The evaluated model's codec (its palette turns cluster ids into colours)."""
    codec = metric.context.codec
    if codec is None or getattr(codec, "modality", "text") != "image" or not getattr(codec, "palette", None):
        raise InputError(
            f"{metric.name}: needs the image model's codec for its colour palette (inside `harness run` it is "
            "given; with `harness score`, name the model with --model)"
        )
    return codec  # type: ignore[return-value]


def colours(codec: ImageCodec, rows: list[list[int]]) -> Any:
    """A float array [rows, width, 3] of colours in [0, 1]."""
    import numpy as np

    palette = np.asarray(codec.palette, dtype=np.float64)
    if not rows:
        return np.zeros((0, 0, 3))
    ids = np.asarray(rows, dtype=np.int64)
    if ids.min() < 0 or ids.max() >= len(palette):
        raise InputError(f"cluster id {int(ids.max())} is outside the model's palette of {len(palette)} colours")
    return palette[ids]
