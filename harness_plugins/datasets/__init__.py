"""Bundled dataset plugins: embedded-wikipedia, embedded-news, embedded-fiction, local-text and hf-text.

Importing this package is cheap: only the standard library and ``harness`` are imported here; bz2/XML
parsing happens when documents are read and the optional ``datasets`` package is imported only by
``hf-text`` when it loads data. Images: digits (scikit-learn, offline), fashion-mnist (Debian package)
and hf-images (CIFAR-10 via ``datasets``).
"""

from __future__ import annotations

from harness.api import hookimpl
from harness_plugins.datasets.digits import Digits
from harness_plugins.datasets.embedded_fiction import EmbeddedFiction
from harness_plugins.datasets.embedded_news import EmbeddedNews
from harness_plugins.datasets.embedded_wikipedia import EmbeddedWikipedia
from harness_plugins.datasets.fashion_mnist import FashionMNIST
from harness_plugins.datasets.hf_datasets import HFTextDataset
from harness_plugins.datasets.hf_images import HFImages
from harness_plugins.datasets.local_files import LocalText

__all__ = ["EmbeddedWikipedia", "EmbeddedNews", "EmbeddedFiction", "LocalText", "HFTextDataset", "harness_register_datasets"]


@hookimpl
def harness_register_datasets(register):
    register(EmbeddedWikipedia)
    register(EmbeddedNews)
    register(EmbeddedFiction)
    register(LocalText)
    register(HFTextDataset)
    register(Digits)  # images
    register(FashionMNIST)
    register(HFImages)
