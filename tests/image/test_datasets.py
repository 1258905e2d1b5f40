"""Image datasets: digits (sklearn, offline), Fashion-MNIST (Debian files), hf-images (needs `datasets`)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from harness.errors import InputError


def test_digits_slices_labels_and_posterises():
    from harness_plugins.datasets.digits import Digits

    docs = list(Digits({"start": 10, "stop": 15}).documents())
    assert [d.id for d in docs] == ["10", "11", "12", "13", "14"]
    assert [d.label for d in docs] == ["0", "1", "2", "3", "4"]  # sklearn's digits cycle 0-9 at the start
    image = docs[0].image
    assert (image.height, image.width, image.channels) == (8, 8, 1)
    grey = list(Digits({"stop": 5, "grey_levels": 2}).documents())[0].image.to_array()
    assert set(np.unique(grey)) <= {0, 255}
    assert len(list(Digits().documents())) == 1797
    with pytest.raises(InputError, match="select no images"):
        list(Digits({"start": 1797}).documents())


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x03" + len(images).to_bytes(4, "big") + b"\x00\x00\x00\x1c" * 2 + images.tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big") + labels.tobytes())


def test_fashion_mnist_reads_idx_files(tmp_path: Path):
    from harness_plugins.datasets.fashion_mnist import FashionMNIST

    images = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)
    write_idx(tmp_path, "t10k", images, np.array([9, 0, 3], dtype=np.uint8))
    docs = list(FashionMNIST({"split": "test", "path": str(tmp_path), "start": 1}).documents())
    assert [(d.id, d.label) for d in docs] == [("1", "T-shirt/top"), ("2", "Dress")]
    assert (docs[0].image.to_array()[:, :, 0] == images[1]).all()


def test_fashion_mnist_missing_names_the_debian_package(tmp_path: Path):
    from harness_plugins.datasets.fashion_mnist import FashionMNIST

    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        list(FashionMNIST({"path": str(tmp_path / "none")}).documents())


def test_hf_images_without_hub_is_one_clear_error():
    from harness_plugins.datasets.hf_images import HFImages

    with pytest.raises(InputError, match="digits"):  # no `datasets` package, or no hub access (HF offline)
        list(HFImages({"stop": 4}).documents())
