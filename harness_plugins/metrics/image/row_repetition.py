"""``row-repetition``: the "vertical stripes" of degenerate greedy ImageGPT, measured."""

from __future__ import annotations

from typing import Any

from harness.api import Metric, Param

from ._pixels import IMAGE_REQUIRES, image_records


class RowRepetition(Metric):
    """Share of generated rows that (nearly) copy the row above: a model stuck repeating one row draws stripes."""

    name = "row-repetition"
    description = "Share of generated rows nearly identical to the row above (vertical stripes); lower is better."
    level = "sample"
    higher_is_better = False
    requires = IMAGE_REQUIRES
    modalities = ("image",)
    version = "1"
    params = (
        Param("min_equal", float, default=0.9, min=0.0, max=1.0, exclusive_min=True,
              help="a row repeats when at least this share of its pixels equals the pixel directly above"),
    )  # fmt: skip
    definition = (
        "For each completion, split context (SOS dropped) and generated ids into rows of `width` pixels "
        "(image_shape; an incomplete last row is ignored). A generated row r repeats when the share of columns c "
        "with row_r[c] == row_{r-1}[c] (equal cluster ids; the row above the first generated row is the last "
        "context row) is at least `min_equal` (default 0.9). The value is repeated rows / generated rows, in "
        "[0, 1] (0.0 when no whole row was generated); the metric is the unweighted mean over completions with a "
        "mean ± 1.96·stderr interval. Real images also have some repeated rows (flat background), so compare "
        "models with each other and with the originals, not with 0."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        threshold = float(self.option("min_equal"))
        out = []
        for image in image_records(self.name, samples):
            rows = image.context[-1:] + image.generated  # without context rows the first row has none above
            pairs = list(zip(rows, rows[1:]))
            if not image.generated or not pairs:
                out.append(0.0)
                continue
            repeats = sum(sum(a == b for a, b in zip(above, row)) / len(row) >= threshold for above, row in pairs)
            out.append(repeats / len(pairs))
        return out
