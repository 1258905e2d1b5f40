"""diversity (Su et al. 2022, SimCTG): the product of (1 − rep-n/100) for n = 2, 3, 4."""

from __future__ import annotations

from typing import Any

from harness.api import Param

from ._common import POOLED_SHORT_ROWS, UnitMetric, unit_param
from .rep_n import SIMCTG_HELP, PooledNgramStats, rep_percent

ORDERS = (2, 3, 4)


class Diversity(UnitMetric):
    """Π_{n=2..4} (1 − rep-n/100), with rep-n as the ``rep-n`` metric defines it; higher = more diverse."""

    name = "diversity"
    description = (
        "SimCTG's diversity: (1 − rep-2/100)(1 − rep-3/100)(1 − rep-4/100) with corpus-pooled rep-n, on "
        "whitespace words by default; a fraction in (0, 1], higher means more diverse."
    )
    level = "corpus"
    higher_is_better = True
    requires = ("output_text",)
    modalities = ("text",)
    version = "1"
    params = (
        unit_param("words"),
        Param("simctg_compat", bool, default=False, help=SIMCTG_HELP),
    )
    definition = (
        "diversity = Π_{n in 2,3,4} (1 − rep-n/100), where rep-n is the `rep-n` metric with the same `unit` and "
        "`simctg_compat`: rep-n = 100 × (1 − Σ_i u_i / Σ_i t_i), t_i the n-grams of text i and u_i its distinct "
        "n-grams, pooled over all records (0 for an order with no n-grams, so its factor is 1). Tokens are "
        "whitespace words of output_text by default, or output_ids with unit=token-ids. With simctg_compat=true "
        "each text's last n-gram is skipped and every rep-n is rounded to 2 decimals before the product, as "
        "SimCTG's evaluation.py does; the product itself is not rounded. The interval is a seeded bootstrap over "
        "prompts."
    ) + POOLED_SHORT_ROWS

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._stats = PooledNgramStats(self, ORDERS)

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        compat = bool(self.option("simctg_compat"))
        value = 1.0
        for unique, total in self._stats.pooled(samples, compat):
            value *= 1.0 - rep_percent(unique, total, compat) / 100.0
        return value
