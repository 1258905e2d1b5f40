"""``recognisability``: is a completed digit still the digit it started as?"""

from __future__ import annotations

from typing import Any

from harness.api import ImageCodec, InputError, Metric, Param

from ._pixels import IMAGE_REQUIRES, colours, image_codec, image_records

#: image datasets a classifier can be trained on (labelled, offline)
SOURCES = ("digits", "fashion-mnist")
#: trained classifiers per (codec, source, slice): fitting takes about a second, scoring many cells reuses it
_CLASSIFIERS: dict[tuple[str, str, int, int | None], Any] = {}


def _features(codec: ImageCodec, rows: list[list[int]]) -> Any:
    """Grey intensities of a whole image at the codec's size, flattened (channel mean of palette colours)."""
    return colours(codec, rows).mean(axis=2).reshape(-1)


def classifier(codec: ImageCodec, source: str, start: int, stop: int | None) -> Any:
    """A logistic-regression classifier of held-out labelled images, seen through the same codec as completions."""
    key = (codec.fingerprint(), source, start, stop)
    if key not in _CLASSIFIERS:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        if source == "digits":
            from harness_plugins.datasets.digits import Digits as Source
        else:
            from harness_plugins.datasets.fashion_mnist import FashionMNIST as Source
        docs = list(Source({"start": start, "stop": stop}).documents())
        features, labels = [], []
        for doc in docs:
            ids = codec.pixel_ids(codec.encode_document(doc))
            features.append(_features(codec, [ids[r * codec.width : (r + 1) * codec.width] for r in range(codec.height)]))
            labels.append(doc.label)
        if len(set(labels)) < 2:
            raise InputError(f"recognisability: the classifier images ({source} {start}:{stop}) hold fewer than two labels")
        model = LogisticRegression(max_iter=2000, C=1.0)
        model.fit(np.stack(features), np.asarray(labels))
        _CLASSIFIERS[key] = model
    return _CLASSIFIERS[key]


class Recognisability(Metric):
    """Share of completions a classifier trained on held-out images assigns the original's label."""

    name = "recognisability"
    description = (
        "Share of completed images (context + generation) that a classifier trained on held-out labelled images "
        "(default: digits 1500…1796) assigns the original's label; higher is better."
    )
    level = "sample"
    higher_is_better = True
    requires = IMAGE_REQUIRES + ("label",)
    modalities = ("image",)
    version = "1"
    params = (
        Param("source", str, default="digits", choices=SOURCES, help="the labelled images the classifier learns"),
        Param("start", int, default=1500, min=0, help="first classifier image (keep it out of training and eval data)"),
        Param("stop", int, default=None, min=1, help="stop before this index (default: the end)"),
    )
    definition = (
        "A multinomial logistic regression (scikit-learn, lbfgs, C = 1, max_iter 2000) is trained on the `source` "
        "images with indexes start … stop−1 (default digits 1500 … 1796, held out from the quickstart's training and "
        "eval images), each encoded and decoded by the evaluated model's codec (resized, quantised to its palette) "
        "and represented by its grey intensities (channel mean of the palette colour, in [0, 1]). Each completion is "
        "the full image: the context rows, then the generated rows (missing rows black). Its value is 1 when the "
        "classifier's prediction equals the record's label (the original document's label), else 0; the metric is "
        "the mean over completions (the share recognised) with a mean ± 1.96·stderr interval."
    )

    def data_slices(self) -> list[tuple[str, int, int | None]]:
        source = self.option("source")
        name = "fashion-mnist train" if source == "fashion-mnist" else source
        return [(name, self.option("start"), self.option("stop"))]

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        import numpy as np

        codec = image_codec(self)
        model = classifier(codec, self.option("source"), self.option("start"), self.option("stop"))
        features = []
        for i, image in enumerate(image_records(self.name, samples)):
            if (image.height, image.width) != (codec.height, codec.width):
                raise InputError(f"{self.name}: record {i + 1} is {image.height}×{image.width}, the codec {codec.height}×{codec.width}")
            rows = (image.context + image.generated)[: image.height]
            rows += [[0] * image.width] * (image.height - len(rows))
            features.append(_features(codec, rows))
        predicted = model.predict(np.stack(features))
        return [float(str(p) == str(rec["label"])) for p, rec in zip(predicted, samples)]
