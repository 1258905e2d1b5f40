"""``pixel-mse`` and ``psnr``: how close a completion is to the original image's hidden part."""

from __future__ import annotations

import math
from typing import Any

from harness.api import InputError, Metric

from ._pixels import IMAGE_REQUIRES, colours, image_codec, image_records

#: PSNR of an exact reconstruction (MSE 0), instead of infinity
PSNR_CAP_DB = 100.0


def squared_errors(metric: Metric, samples: list[dict[str, Any]]) -> list[float]:
    """Per completion: mean over generated pixels and RGB channels of (generated − original)², colours in [0, 1]."""
    import numpy as np

    codec = image_codec(metric)
    out = []
    for i, image in enumerate(image_records(metric.name, samples)):
        rows = min(len(image.generated), len(image.reference))
        if rows == 0:
            raise InputError(
                f"{metric.name}: record {i + 1} (prompt_id {samples[i].get('prompt_id')!r}) has no whole generated row "
                "with an original row to compare (reference_ids)"
            )
        diff = colours(codec, image.generated[:rows]) - colours(codec, image.reference[:rows])
        out.append(float(np.mean(diff**2)))
    return out


class PixelMSE(Metric):
    """Distance to the original: low for a completion that reproduces it, not a measure of plausibility."""

    name = "pixel-mse"
    description = "Mean squared error (colours in [0, 1]) between generated pixels and the original's; lower is closer."
    level = "sample"
    higher_is_better = False
    requires = IMAGE_REQUIRES + ("reference_ids",)
    modalities = ("image",)
    version = "1"
    params = ()
    definition = (
        "Cluster ids are turned into colours through the evaluated model's palette (RGB in [0, 1]). For each "
        "completion, over the generated rows that have an original row (reference_ids, the image's hidden part): "
        "MSE = mean over pixels and the 3 channels of (generated − original)². The metric is the unweighted mean "
        "over completions with a mean ± 1.96·stderr interval. Many plausible completions differ from the original; "
        "read it with the recognisability and repetition metrics."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return squared_errors(self, samples)


class PSNR(Metric):
    """PSNR per completion, averaged: the usual log view of the MSE, peak value 1."""

    name = "psnr"
    description = "Peak signal-to-noise ratio (dB, peak 1) of generated pixels vs the original's; higher is closer."
    level = "sample"
    higher_is_better = True
    requires = IMAGE_REQUIRES + ("reference_ids",)
    modalities = ("image",)
    version = "1"
    params = ()
    definition = (
        "For each completion, PSNR = 10 · log10(1 / MSE) in dB with MSE as in `pixel-mse` (colours in [0, 1], so the "
        f"peak is 1); an exact reconstruction (MSE 0) scores {PSNR_CAP_DB:.0f} dB. The metric is the unweighted mean "
        "of per-completion PSNR over completions with a mean ± 1.96·stderr interval."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [PSNR_CAP_DB if mse <= 0 else min(PSNR_CAP_DB, 10.0 * math.log10(1.0 / mse)) for mse in squared_errors(self, samples)]
