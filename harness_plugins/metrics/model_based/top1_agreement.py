"""``top1-agreement``: how often two fitted models pick the same next token on the same original texts."""

from __future__ import annotations

from typing import Any

from harness.api import Metric, Param

from ._teacher_forced import forward_stats, scored_sequences, teacher_forced_params
from ._featurizers import model_handle


class Top1Agreement(Metric):
    """The paper's top-1 rank similarity (Sec. 6.1): one column of the pairwise matrix per `against` recipe."""

    name = "top1-agreement"
    description = (
        "Share of teacher-forced positions of the original texts where the evaluated model and the same model "
        "under another recipe (`against`) have the same argmax next token (the paper's top-1 similarity)."
    )
    level = "sample"
    higher_is_better = None
    requires = ("context_ids", "reference_text")
    modalities = ("text",)
    version = "1"
    params = (
        Param("against", str, help="the other recipe (same model), by its name in the benchmark's recipes"),
        *teacher_forced_params(),
    )
    definition = (
        "For each record, the sequence context_ids + reference ids (the drawn human continuation) is run "
        "teacher-forced through the evaluated model A and through the same model fitted by recipe `against` (B). "
        "At every scored position (span: continuation = the reference tokens; text = every token after the first) "
        "a = argmax of A's raw next-token logits and b = argmax of B's; the record's value is the fraction of "
        "positions with a == b, and the metric is the mean over records (mean ± 1.96·stderr). 1.0 when A and B "
        "are the same weights. A matrix over recipes comes from one metric entry per `against`."
    )

    def recipe_dependencies(self) -> tuple[str, ...]:
        return (str(self.option("against")),)

    def _top1(self, handle: Any, samples: list[dict[str, Any]]) -> list[Any]:
        items = scored_sequences(samples, handle.codec, self.option("span"))
        stats = forward_stats(handle, items, int(self.option("batch_size")), 1)
        return [s["top1"] for s in stats]

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        own = self._top1(model_handle(self.context, f"metric {self.name}"), samples)  # before the other loads
        load_other = self.context.model_for
        if load_other is None:
            raise ValueError("top1-agreement compares two fitted models: it runs inside `harness run` only")
        other = self._top1(load_other(str(self.option("against"))), samples)
        values = []
        for record, a, b in zip(samples, own, other):
            if len(a) == 0:
                raise ValueError(f"top1-agreement: prompt {record.get('prompt_id')!r} has no reference tokens to score")
            values.append(float((a == b).mean()))
        return values
