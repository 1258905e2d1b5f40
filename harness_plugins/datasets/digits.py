"""``digits``: scikit-learn's 1,797 handwritten digits (8×8 greys), read from inside the sklearn wheel: offline."""

from __future__ import annotations

from typing import Iterator

from harness_plugins.datasets._images import (
    GREY_PARAMS,
    SLICE_PARAMS,
    check_slice,
    documents,
)

from harness.api import Dataset, Document, InputError, Param


class Digits(Dataset):
    """Values 0 … 16 are scaled to 0 … 255 (the codec resizes and quantises); the label is the digit."""

    name = "digits"
    description = "scikit-learn's handwritten digits (1,797 8×8 grey images, offline); label = the digit."
    version = "1"
    requires_packages = ("scikit-learn",)
    modality = "image"
    params: tuple[Param, ...] = SLICE_PARAMS + GREY_PARAMS

    def data_slices(self) -> list[tuple[str, int, int | None]]:
        return [("digits", self.option("start"), self.option("stop"))]

    def documents(self) -> Iterator[Document]:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise InputError(f"{self.name}: needs scikit-learn (pip install 'hyperfit-harness[image]')") from None
        data = load_digits()
        start, stop = check_slice(self.name, self.option("start"), self.option("stop"), len(data.images))
        items = ((i, data.images[i] * (255.0 / 16.0), str(int(data.target[i]))) for i in range(start, stop))
        yield from documents(self.name, items, grey=True, levels=self.option("grey_levels"))
