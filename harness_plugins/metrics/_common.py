"""Helpers shared by the bundled metrics (not a plugin): units, n-grams, training sequences, caches.

Light on purpose: numpy is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

from harness.api import Metric, Param

#: what a "token" is for the lexical and repetition metrics (the one vocabulary they all share): the whitespace
#: separated words of output_text, or the model's generated token ids (output_ids)
UNITS = ("words", "token-ids")
#: the record field each unit reads
UNIT_FIELDS = {"words": "output_text", "token-ids": "output_ids"}
#: what `unit` means, for the definitions of metrics that take it (one wording everywhere)
UNIT_RULE = (
    "Units (`unit`): token-ids = output_ids, the generated token ids (context excluded; the evaluated model's "
    "tokenizer); words = output_text.split(), the whitespace-separated words of output_text (case-sensitive, "
    "punctuation attached), so unit=words needs only output_text."
)
#: cached per-text statistics kept per metric instance (a corpus and its bootstrap resamples fit easily)
CACHE_LIMIT = 200_000


def unit_param(default: str) -> Param:
    """The `unit` param of every lexical/repetition metric: same name, choices and meaning; only the default
    differs (each metric keeps the unit its published definition uses, so committed scores stay as they are)."""
    return Param(
        "unit", str, default=default, choices=UNITS,
        help="'words': whitespace-separated tokens of output_text (str.split()); 'token-ids': output_ids",
    )  # fmt: skip


def unit_field(unit: str) -> str:
    """The record field a unit reads."""
    try:
        return UNIT_FIELDS[unit]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; choose from {UNITS}") from None


def units_of(metric_name: str, rec: dict[str, Any], position: int, unit: str) -> list[Any]:
    """The token sequence of one record: output_text.split() for words, list(output_ids) for token ids."""
    field = unit_field(unit)
    value = rec.get(field)
    if unit == "words":
        if not isinstance(value, str):
            raise TypeError(
                f"{metric_name}: {field} of record {position} (prompt_id {rec.get('prompt_id')!r}) must be a "
                f"string, got {type(value).__name__}"
            )
        return value.split()
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{metric_name}: {field} of record {position} (prompt_id {rec.get('prompt_id')!r}) must be a list of "
            f"token ids, got {type(value).__name__}"
        )
    return list(value)


class UnitMetric(Metric):
    """Base of the metrics with the shared `unit` param (declare ``unit_param(default)`` in ``params``).

    ``requires`` is per instance: the class attribute names the default unit's field, and each configured
    instance reads only the field of its own unit, so ``harness score --param unit=words`` accepts a text-only
    JSONL and ``unit=token-ids`` one with only output_ids.
    """

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self.requires = (unit_field(self.unit),)

    @property
    def unit(self) -> str:
        """The configured unit ("words" or "token-ids")."""
        return str(self.option("unit"))

    def units(self, rec: dict[str, Any], position: int) -> list[Any]:
        """The record's tokens in this instance's unit."""
        return units_of(self.name, rec, position, self.unit)


def stopped_at_eos(rec: dict[str, Any]) -> bool:
    """True for a continuation the decoder ended at EOS (only under ``eval.stop_at_eos: true``): it is shorter
    than ``new_tokens``. Records of the fixed-length policy (the default) never carry the flag."""
    return bool(rec.get("stopped_at_eos"))


#: the short-row rule of the pooled n-gram metrics (distinct-n, n-gram entropy, rep-n, diversity)
POOLED_SHORT_ROWS = (
    " Short and empty continuations (only under eval.stop_at_eos: true) are pooled as they are: each contributes "
    "the n-grams it has (an empty one none) and no per-continuation ratio is formed, so none is inflated; a set "
    "of shorter texts still has fewer n-grams in all, so compare cells of equal length (the leaderboard shows "
    "the mean length whenever lengths differ)."
)


def content_key(tokens: Sequence[Any]) -> Hashable:
    """A cache key for a token sequence (bootstrap resamples score the same texts many times)."""
    return tuple(tokens)


def ngrams(tokens: Sequence[Any], n: int, skip_last: bool = False) -> list[tuple[Any, ...]]:
    """All contiguous n-grams of ``tokens`` in order (none if shorter than n); ``skip_last`` drops the last one."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = list(zip(*(tokens[k:] for k in range(n)))) if len(tokens) >= n else []
    if skip_last and grams:
        grams.pop()
    return grams


def training_sequences(metric: Metric) -> list[list[int]]:
    """The cell's training token ids from ``metric.context``, or the error that tells the user what to do."""
    train = getattr(metric.context, "train_sequences", None)
    if train is None:
        raise ValueError(
            f"{metric.name} needs the recipe's training sequences: use it on a cell whose recipe trains, "
            "or pass --train to harness score"
        )
    return train


class NgramIndex:
    """Gives every distinct n-gram an integer id and keeps each text's (ids, counts) arrays, cached by content.

    Lets corpus-level statistics over a union of texts (distinct n-grams, the pooled n-gram distribution) be
    recomputed for each bootstrap resample with a few numpy calls instead of re-counting n-grams.
    """

    def __init__(self, n: int):
        self.n = n
        self._ids: dict[tuple[Any, ...], int] = {}
        self._texts: dict[Hashable, tuple[Any, Any, int]] = {}

    def text(self, tokens: Sequence[Any]) -> tuple[Any, Any, int]:
        """(sorted distinct n-gram ids as int64, their counts in the text as int64, number of n-grams)."""
        import numpy as np

        key = content_key(tokens)
        cached = self._texts.get(key)
        if cached is None:
            if len(self._texts) >= CACHE_LIMIT:
                self._texts.clear()
            counts: dict[int, int] = {}
            ids = self._ids
            for gram in ngrams(tokens, self.n):
                gid = ids.get(gram)
                if gid is None:
                    gid = ids[gram] = len(ids)
                counts[gid] = counts.get(gid, 0) + 1
            keys = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
            order = np.argsort(keys, kind="stable")
            cached = (keys[order], values[order], int(values.sum()))
            self._texts[key] = cached
        return cached

    def pooled_counts(self, texts: list[Sequence[Any]]) -> tuple[Any, int]:
        """Counts of the n-grams pooled over ``texts`` (a text listed twice counts twice), and the total.

        The counts are a float64 array indexed by n-gram id (zeros for ids absent from ``texts``).
        """
        import numpy as np

        parts = [self.text(t) for t in texts]
        total = sum(p[2] for p in parts)
        if total == 0:
            return np.zeros(len(self._ids), dtype=np.float64), 0
        ids = np.concatenate([p[0] for p in parts])
        weights = np.concatenate([p[1] for p in parts]).astype(np.float64)
        return np.bincount(ids, weights=weights, minlength=len(self._ids)), total

    def contributions(self, texts: list[Sequence[Any]], per_gram: Any) -> list[float]:
        """For each text, Σ over its n-gram occurrences of ``per_gram[id]`` (an array indexed by n-gram id)."""
        import numpy as np

        out = []
        for t in texts:
            ids, counts, _ = self.text(t)
            out.append(float(np.dot(counts.astype(np.float64), per_gram[ids])) if len(ids) else 0.0)
        return out


def per_text_shares(values: list[float], total: int) -> list[float]:
    """Scale per-text contributions c_i to c_i · N / total, so that their mean is Σ c_i / total."""
    if total == 0:
        return [0.0] * len(values)
    return [v * len(values) / total for v in values]


class PooledNgramMetric(UnitMetric):
    """Base for corpus metrics over the pooled n-grams of every text (distinct-n, n-gram entropy)."""

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._index = NgramIndex(int(self.option("n")))

    def _texts(self, samples: list[dict[str, Any]]) -> list[list[Any]]:
        return [self.units(rec, i) for i, rec in enumerate(samples)]
