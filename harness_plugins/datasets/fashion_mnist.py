"""``fashion-mnist``: Zalando's Fashion-MNIST (28×28 greys) from the Debian package ``dataset-fashion-mnist``."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from harness_plugins.datasets._images import (
    GREY_PARAMS,
    SLICE_PARAMS,
    check_slice,
    documents,
)

from harness.api import Dataset, Document, InputError, Param

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"train": "train", "test": "t10k"}


class FashionMNIST(Dataset):
    """The IDX files are read with numpy (16-byte image header, 8-byte label header); label = the class name."""

    name = "fashion-mnist"
    description = "Fashion-MNIST (70,000 28×28 grey images) from `apt-get install dataset-fashion-mnist`, offline."
    version = "1"
    modality = "image"
    params: tuple[Param, ...] = (
        Param("split", str, default="train", choices=tuple(FILES), help="train (60,000) or test (10,000)"),
        Param("path", str, default=DEFAULT_DIR, help="folder with the *-ubyte.gz files"),
    ) + SLICE_PARAMS + GREY_PARAMS

    def data_slices(self) -> list[tuple[str, int, int | None]]:
        return [(f"fashion-mnist {self.option('split')}", self.option("start"), self.option("stop"))]

    def documents(self) -> Iterator[Document]:
        import numpy as np

        folder = Path(self.option("path")).expanduser()
        prefix = FILES[self.option("split")]
        images_file = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels_file = folder / f"{prefix}-labels-idx1-ubyte.gz"
        for path in (images_file, labels_file):
            if not path.is_file():
                raise InputError(
                    f"{self.name}: {path} not found; install the Debian package with "
                    "`apt-get install dataset-fashion-mnist` (or set `path` to a folder holding the files), "
                    "or use the `digits` dataset, which needs nothing"
                )
        with gzip.open(images_file) as handle:
            images = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(labels_file) as handle:
            labels = np.frombuffer(handle.read(), np.uint8, offset=8)
        start, stop = check_slice(self.name, self.option("start"), self.option("stop"), len(images))
        items = ((i, images[i], CLASSES[int(labels[i])]) for i in range(start, stop))
        yield from documents(self.name, items, grey=True, levels=self.option("grey_levels"))
