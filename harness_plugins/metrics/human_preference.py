"""human-preference and human-agreement: the paper's Table 1 measure from real judgements (``harness annotate``).

``judge-preference`` asks a model; these read what people said, in the append-only files ``harness annotate``
writes (``RESULTS_DIR/annotations/<annotator>.jsonl``, docs/annotation.md). ``human-preference`` is the share
of judgements in which a cell's continuation was better than or as good as the other side's (by default the
original human continuation, the paper's comparison); ``human-agreement`` is how far two annotators agree
(Cohen's kappa on the items both judged), the number the paper does not report.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any, ClassVar

from harness.api import InputError, Metric, Param

from ._annotations import REFERENCE, cohen_kappa, folder_fingerprint, read_folder, record_outcomes

COUNTS = ("better-or-equal", "preference")
_POINTS = {
    "better-or-equal": {"better": 1.0, "equal": 1.0, "worse": 0.0},
    "preference": {"better": 1.0, "equal": 0.5, "worse": 0.0},
}


def _shared_params() -> tuple[Param, ...]:
    return (
        Param("against", str, default=REFERENCE,
              help="the other side of the comparison: `reference` (the human continuation) or a cell model__recipe__decoder"),
        Param("annotations", str, default=None,
              help="folder of <annotator>.jsonl files; None: the results folder's annotations/ (where the run passes it)"),
        Param("annotators", list, default=None, help="only these annotators' files (names); None: every file in the folder"),
    )  # fmt: skip


def _names_problem(value: Any, fewest: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) < fewest or not all(isinstance(v, str) and v for v in value):
        return f"expected a list of at least {fewest} annotator name(s), got {value!r}"
    return None


class _HumanJudgements(Metric):
    """What both metrics share: where the files are, which judgements count, and what a cached score depends on."""

    modalities = ("text",)
    version = "1"
    requires = ("output_text", "reference_text")  # with the default against: reference
    #: how many annotators `annotators` must name, when given
    min_annotators: ClassVar[int] = 1

    @classmethod
    def config_problems(cls, params: dict[str, Any], train: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        problem = _names_problem(params.get("annotators"), cls.min_annotators)
        return [("annotators", problem)] if problem else []

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        if self.option("against") != REFERENCE:
            self.requires = ("output_text",)

    def folder(self) -> Path:
        given = self.option("annotations")
        if given:
            return Path(str(given)).expanduser()
        results_dir = getattr(self.context, "results_dir", None)  # set by a core that passes the run's results folder
        if results_dir:
            return Path(results_dir) / "annotations"
        raise InputError(f"{self.name}: set `annotations` to the folder of annotator files (RESULTS_DIR/annotations)")

    def input_fingerprint(self) -> str:
        """The annotation files' content: a stored score of these files is stale once they change."""
        return folder_fingerprint(self.folder())

    def outcomes(self, samples: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Per record, {annotator: better | equal | worse} (only the chosen annotators)."""
        folder = self.folder()
        judgements = read_folder(folder)
        chosen = self.option("annotators")
        if chosen is not None:
            missing = sorted(set(chosen) - {j["annotator"] for j in judgements})
            if missing:
                raise InputError(f"{self.name}: no judgements of annotator(s) {', '.join(missing)} in {folder}")
            judgements = [j for j in judgements if j["annotator"] in chosen]
        per_record = record_outcomes(judgements, samples, str(self.option("against")))
        if not any(per_record):
            raise ValueError(
                f"{self.name}: no judgement in {folder} is about these {len(samples)} continuations against "
                f"{self.option('against')!r} (annotate them: harness annotate RESULTS_DIR --a CELL --b {self.option('against')})"
            )
        return per_record


class HumanPreference(_HumanJudgements):
    name = "human-preference"
    description = (
        "Percent of human judgements (harness annotate) in which the continuation is better than or as good as the "
        "other side (default: the original human continuation), per judged item"
    )
    level = "sample"
    higher_is_better = True
    params = (
        *_shared_params(),
        Param("count", str, default="better-or-equal", choices=COUNTS,
              help="better-or-equal: better and equal count 1 (the paper's number); preference: better 1, equal 0.5"),
    )  # fmt: skip
    definition = (
        "Reads the judgements in effect (judgement lines not removed by a later undo line) of every "
        "<annotator>.jsonl in `annotations` (default: the results folder's annotations/), written by harness annotate "
        "(format 1, docs/annotation.md). A judgement is about a record when its item is the record's prompt_id, "
        "`against` is one of its two cells, and the sha256 of the text it showed for the other cell is that of the "
        "record's output_text (with against=reference, the text it showed as the reference must also be the "
        "record's reference_text); per annotator the last such judgement counts. Each becomes better / equal "
        "(tie) / worse for the record's continuation. count=better-or-equal (default; the paper's Table 1 measure): "
        "better and equal score 1, worse 0; count=preference: better 1, equal 0.5, worse 0. A record's value is "
        "100 × the mean score over its annotators; records no judgement is about are skipped (n = judged items). "
        "The metric is the mean over judged items (percent) with a mean ± 1.96·stderr interval over items (the "
        "normal interval of every sample-level metric: zero width when all items agree, and not clipped to "
        "[0, 100] at small n). No judgement about any record is an error."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        points = _POINTS[str(self.option("count"))]
        return [100.0 * sum(points[o] for o in found.values()) / len(found) for found in self.outcomes(samples) if found]


class HumanAgreement(_HumanJudgements):
    name = "human-agreement"
    description = (
        "Agreement between annotators (harness annotate): Cohen's kappa over the items two annotators both judged, "
        "averaged over annotator pairs (Light's kappa)"
    )
    level = "corpus"
    higher_is_better = None
    min_annotators = 2
    params = (
        *_shared_params(),
        Param("resamples", int, default=1000, min=0, help="bootstrap resamples of the judged items for the interval (0: none)"),
        Param("seed", int, default=0, help="seed of that bootstrap"),
    )  # fmt: skip
    definition = (
        "Reads the judgements in effect exactly as human-preference does (same `annotations`, `against`, "
        "`annotators`, undo lines and text matching) and labels each better / equal / worse for the record's "
        "continuation. For each pair of annotators u < v with at least one item (record) both judged, Cohen's kappa "
        "over those items: (p_o − p_e) / (1 − p_e), p_o = share of items with the same label, p_e = Σ over labels of "
        "p_u(label)·p_v(label); kappa = 1 when both used a single, same label throughout (p_e = 1). The value is the "
        "mean over such pairs (Light's kappa; for two annotators, their Cohen's kappa). Interval: percentile "
        "bootstrap (2.5 %, 97.5 %) of that value over the items judged by at least two annotators, `resamples` "
        "draws seeded by `seed`, widened to contain the value; its warning gives the number of those items (the "
        "row's n counts the records). Fewer than two annotators on every item is an error. Descriptive: it "
        "qualifies the annotation, not the model."
    )

    def _shared(self, samples: list[dict[str, Any]]) -> list[dict[str, str]]:
        shared = [found for found in self.outcomes(samples) if len(found) >= 2]
        if not shared:
            raise ValueError(f"{self.name}: no item of these continuations was judged by two annotators")
        return shared

    @staticmethod
    def light_kappa(items: list[dict[str, str]]) -> float:
        """Mean over annotator pairs of Cohen's kappa on the items both judged."""
        names = sorted({name for found in items for name in found})
        kappas = []
        for u, v in combinations(names, 2):
            both = [found for found in items if u in found and v in found]
            if both:
                kappas.append(cohen_kappa([f[u] for f in both], [f[v] for f in both]))
        return sum(kappas) / len(kappas)

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        return self.light_kappa(self._shared(samples))

    def own_interval(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """A bootstrap over the doubly judged items (a prompt bootstrap would draw records nobody judged twice)."""
        import random

        import numpy as np

        items = self._shared(samples)
        value = self.light_kappa(items)
        warning = f"kappa over {len(items)} items judged by two or more annotators (of {len(samples)} continuations)"
        draws = int(self.option("resamples"))
        if draws == 0:
            return {"ci_low": value, "ci_high": value, "method": "point", "warning": warning}
        rng = random.Random(int(self.option("seed")))
        stats = [self.light_kappa(rng.choices(items, k=len(items))) for _ in range(draws)]
        low, high = np.percentile(np.asarray(stats, dtype=float), [2.5, 97.5])
        return {"ci_low": min(float(low), value), "ci_high": max(float(high), value), "method": "bootstrap", "warning": warning}
