"""``hf-images``: an image column of a Hugging Face ``datasets`` dataset (CIFAR-10 by default: the paper's data).

Needs the optional ``datasets`` package and hub access (or its cache); imported only when documents are read.
"""

from __future__ import annotations

from typing import Any, Iterator

from harness_plugins.datasets._images import (
    GREY_PARAMS,
    SLICE_PARAMS,
    check_slice,
    documents,
)
from harness_plugins.datasets.hf_datasets import load_hub_split

from harness.api import Dataset, Document, InputError, Param


class HFImages(Dataset):
    """Rows in dataset order with id = row index; the label column's class name (or value) is the label."""

    name = "hf-images"
    description = "Images from a Hugging Face dataset (default uoft-cs/cifar10, column img); needs `datasets` + hub."
    version = "1"
    requires_packages = ("datasets",)
    modality = "image"
    params: tuple[Param, ...] = (
        Param("path", str, default="uoft-cs/cifar10", help="hub id or local dataset path"),
        Param("name", str, default=None, help="dataset configuration"),
        Param("split", str, default="train", help="which split to read"),
        Param("image_field", str, default="img", help="the column holding the images"),
        Param("label_field", str, default="label", help="the column holding class labels (missing: no labels)"),
        Param("revision", str, default=None, help="a hub revision to pin"),
        Param("grey", bool, default=False, help="convert to one grey channel"),
    ) + SLICE_PARAMS + GREY_PARAMS

    def _load(self) -> Any:
        return load_hub_split(
            self,
            source=f"{self.option('path')!r} (split {self.option('split')!r})",
            install_hint="pip install 'hyperfit-harness[hub]' (offline, use the `digits` or `fashion-mnist` datasets)",
            offline_hint="Without hub access use the offline `digits` or `fashion-mnist` datasets",
        )

    def documents(self) -> Iterator[Document]:
        import numpy as np

        data = self._load()
        field, label_field = self.option("image_field"), self.option("label_field")
        columns = list(getattr(data, "column_names", []) or [])
        if columns and field not in columns:
            raise InputError(f"{self.name}: no column {field!r} (columns: {', '.join(columns)}); set image_field")
        names = None
        if label_field in columns:
            feature = data.features[label_field]
            names = getattr(feature, "names", None)
        start, stop = check_slice(self.name, self.option("start"), self.option("stop"), len(data))

        def items() -> Iterator[tuple[int, Any, str | None]]:
            for index in range(start, stop):
                row = data[index]
                image = row[field]
                array = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
                label = row.get(label_field) if label_field in columns else None
                if label is not None and names is not None:
                    label = names[int(label)]
                yield index, array, None if label is None else str(label)

        yield from documents(self.name, items(), grey=self.option("grey"), levels=self.option("grey_levels"))
