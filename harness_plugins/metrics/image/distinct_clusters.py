"""``distinct-clusters``: how many palette colours a completion uses."""

from __future__ import annotations

from typing import Any

from harness.api import Metric

from ._pixels import IMAGE_REQUIRES, image_records


class DistinctClusters(Metric):
    """A collapsed completion (one flat colour, a few stripes) uses few colours; the original uses more."""

    name = "distinct-clusters"
    description = "Number of distinct colour clusters among the generated pixels, mean over completions."
    level = "sample"
    higher_is_better = True
    requires = IMAGE_REQUIRES
    modalities = ("image",)
    version = "1"
    params = ()
    definition = (
        "For each completion, the number of distinct cluster ids among its generated pixels (whole rows of "
        "output_ids; context excluded); 0 for an empty completion. The metric is the unweighted mean over "
        "completions with a mean ± 1.96·stderr interval. Its range is 0 … palette size; token TTR (`ttr` with a "
        "window of the generated length) is the same count divided by the number of generated pixels."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [float(len({i for row in image.generated for i in row})) for image in image_records(self.name, samples)]
