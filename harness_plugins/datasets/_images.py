"""What the image datasets share: a slice of the source's images, optional grey conversion and posterising.

Every image dataset yields ``Document(id, "", image=ImagePayload, label=...)`` in the source's order with
the source's row index as id, so ``start``/``stop`` carve disjoint parts of one source (e.g. images for
pretraining and a held-out part for a recognisability classifier).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from harness.api import Document, ImagePayload, InputError, Param

SLICE_PARAMS = (
    Param("start", int, default=0, min=0, help="first image (index into the source, in its order)"),
    Param("stop", int, default=None, min=1, help="stop before this index (default: the end)"),
)
GREY_PARAMS = (
    Param("grey_levels", int, default=None, min=2, max=256,
          help="posterise to this many evenly spaced greys (0 … 255) before any model sees the image"),
)  # fmt: skip


def posterise(array: Any, levels: int | None) -> Any:
    """Round every value in 0 … 255 to the nearest of ``levels`` evenly spaced greys (None: unchanged)."""
    import numpy as np

    if levels is None:
        return array
    step = 255.0 / (levels - 1)
    return np.clip(np.rint(np.rint(np.asarray(array, dtype=np.float64) / step) * step), 0, 255).astype(np.uint8)


def to_grey(array: Any) -> Any:
    """ITU-R 601 luma of an RGB array [H, W, 3] as [H, W] (already grey arrays pass through)."""
    import numpy as np

    values = np.asarray(array, dtype=np.float64)
    if values.ndim == 3 and values.shape[2] == 3:
        values = values @ np.array([0.299, 0.587, 0.114])
    elif values.ndim == 3:
        values = values[:, :, 0]
    return values


def check_slice(name: str, start: int, stop: int | None, total: int) -> tuple[int, int]:
    stop = total if stop is None else stop
    if start >= stop or start >= total:
        raise InputError(f"{name}: start {start} / stop {stop} select no images (the source has {total})")
    return start, min(stop, total)


def documents(
    name: str, items: Iterable[tuple[int, Any, str | None]], grey: bool, levels: int | None
) -> Iterator[Document]:
    """Documents from (index, array, label) triples; ``grey`` converts RGB to one channel first."""
    for index, array, label in items:
        values = to_grey(array) if grey else array
        yield Document(str(index), "", image=ImagePayload.from_array(posterise(values, levels)), label=label)
