"""``completion-diversity``: do completions differ from one another, or collapse to one picture?"""

from __future__ import annotations

from typing import Any

from harness.api import InputError, Metric, Param

from ._pixels import IMAGE_REQUIRES, colours, image_codec, image_records


class CompletionDiversity(Metric):
    """Mean pairwise RMS colour distance between completions; per-text contributions make the bootstrap cheap."""

    name = "completion-diversity"
    description = "Mean pairwise RMS colour distance between the generated parts of completions; higher is more diverse."
    level = "corpus"
    higher_is_better = True
    requires = IMAGE_REQUIRES
    modalities = ("image",)
    version = "1"
    params = (
        Param("pairs", str, default="all", choices=("all", "same-prompt"),
              help="all: every pair of completions; same-prompt: only draws of the same context (samples_per_prompt > 1)"),
    )  # fmt: skip
    definition = (
        "Generated rows are turned into colours through the model's palette (RGB in [0, 1]). The distance of two "
        "completions is the RMS over pixels and channels of their colour difference, over the generated rows both "
        "have. Each completion's contribution is its mean distance to the others (pairs=all: every other completion "
        "of the set; pairs=same-prompt: the other draws of its own context); the metric is the mean contribution, "
        "which for pairs=all equals the mean over all unordered pairs. Its interval is a seeded bootstrap over "
        "prompts of the contributions. In [0, √3]; 0 means every completion is the same picture."
    )

    def score_per_text(self, samples: list[dict[str, Any]]) -> list[float]:
        import numpy as np

        codec = image_codec(self)
        images = image_records(self.name, samples)
        rows = min(len(im.generated) for im in images)
        if rows == 0 or len(images) < 2:
            raise InputError(f"{self.name}: needs at least two completions with a whole generated row")
        flat = np.stack([colours(codec, im.generated[:rows]).reshape(-1) for im in images])
        squares = (flat**2).sum(1)
        dist2 = np.maximum(squares[:, None] + squares[None, :] - 2.0 * flat @ flat.T, 0.0) / flat.shape[1]
        dist = np.sqrt(dist2)
        if self.option("pairs") == "all":
            groups = [list(range(len(images)))]
        else:
            by_prompt: dict[Any, list[int]] = {}
            for i, rec in enumerate(samples):
                by_prompt.setdefault(rec.get("prompt_id"), []).append(i)
            groups = list(by_prompt.values())
            if any(len(g) < 2 for g in groups):
                raise InputError(f"{self.name}: pairs=same-prompt needs eval.samples_per_prompt > 1 and a sampling decoder")
        out = [0.0] * len(images)
        for group in groups:
            for i in group:
                others = [j for j in group if j != i]
                out[i] = float(dist[i, others].mean())
        return out

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        values = self.score_per_text(samples)
        return sum(values) / len(values)
