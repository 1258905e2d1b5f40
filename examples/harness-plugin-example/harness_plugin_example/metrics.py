"""``example-word-repeats``: the share of words that repeat the word right before them ("the the").

A metric reads generation records (dicts with the fields in ``requires``) and returns one value per record
(``level = "sample"``: the harness reports the mean with a ±1.96·stderr interval) or one value for the set
(``level = "corpus"``: a bootstrap over prompts). ``definition`` is stored with every result.
"""

from __future__ import annotations

import re
from typing import Any

from harness.api import hookimpl, Metric, Param

_WORD = re.compile(r"\w+")


def repeat_share(text: str, lowercase: bool = True) -> float:
    words = _WORD.findall(text.lower() if lowercase else text)
    if len(words) < 2:
        return 0.0
    return sum(a == b for a, b in zip(words, words[1:])) / (len(words) - 1)


class WordRepeats(Metric):
    name = "example-word-repeats"
    description = "Share of words equal to the word before them (immediate repetition); lower is better"
    version = "1"
    level = "sample"
    higher_is_better = False
    requires = ("output_text",)
    params = (Param("lowercase", bool, default=True, help="compare words case-insensitively"),)
    definition = (
        "Per record: the words of output_text (maximal runs of \\w characters, lower-cased unless lowercase is "
        "false); value = (number of positions i ≥ 2 whose word equals word i−1) / (words − 1), 0 for fewer than "
        "two words. The metric is the mean over records with a mean ± 1.96·stderr interval."
    )

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        return [repeat_share(str(r.get("output_text") or ""), self.option("lowercase")) for r in samples]


@hookimpl
def harness_register_metrics(register):
    register(WordRepeats)
