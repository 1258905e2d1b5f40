"""Dataset overlap: the longest run of a continuation's token ids that also occurs in the training sequences.

Exact and linear: a generalized suffix automaton is built over the (short) continuations, every training
sequence is streamed through it once to find, for each automaton state, the longest of its strings that
occurs in training, and then each continuation is walked once. Cost O(Σ|outputs| + Σ|training|) dictionary
steps, no quadratic comparison and no hashing (so no false matches).
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

from harness.api import Metric

from ._common import CACHE_LIMIT, content_key, training_sequences, units_of


def longest_overlaps(texts: Sequence[Sequence[Hashable]], train: Sequence[Sequence[Hashable]]) -> list[int]:
    """For each text, the length of its longest contiguous run that occurs inside one training sequence."""
    # --- generalized suffix automaton over the texts
    length: list[int] = [0]
    link: list[int] = [-1]
    nxt: list[dict[Hashable, int]] = [{}]

    def clone_of(q: int, new_length: int) -> int:
        length.append(new_length)
        link.append(link[q])
        nxt.append(dict(nxt[q]))
        return len(length) - 1

    def extend(last: int, c: Hashable) -> int:
        q = nxt[last].get(c)
        if q is not None:  # the string is already in the automaton (seen in an earlier text)
            if length[last] + 1 == length[q]:
                return q
            clone = clone_of(q, length[last] + 1)
            p = last
            while p != -1 and nxt[p].get(c) == q:
                nxt[p][c] = clone
                p = link[p]
            link[q] = clone
            return clone
        length.append(length[last] + 1)
        link.append(0)
        nxt.append({})
        cur = len(length) - 1
        p = last
        while p != -1 and c not in nxt[p]:
            nxt[p][c] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][c]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = clone_of(q, length[p] + 1)
                while p != -1 and nxt[p].get(c) == q:
                    nxt[p][c] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        return cur

    for text in texts:
        last = 0
        for c in text:
            last = extend(last, c)

    # --- stream the training sequences: matched[v] = longest string of state v seen in training
    n_states = len(length)
    matched = [0] * n_states
    for seq in train:
        v = 0
        cur_len = 0
        for c in seq:
            while v and c not in nxt[v]:
                v = link[v]
                cur_len = length[v]
            t = nxt[v].get(c)
            if t is None:  # at the root, c occurs in no text
                continue
            v = t
            cur_len += 1
            if cur_len > matched[v]:
                matched[v] = cur_len

    # --- every suffix of a matched string is matched too: a state with a match makes its suffix-link parent
    # fully matched; best[v] = longest suffix of longest(v) that occurs in training
    by_length: list[list[int]] = [[] for _ in range(max(length) + 1)]
    for v in range(1, n_states):
        by_length[length[v]].append(v)
    for bucket in reversed(by_length):
        for v in bucket:
            if matched[v] and link[v] > 0:
                parent = link[v]
                matched[parent] = length[parent]
    best = [0] * n_states
    for bucket in by_length:
        for v in bucket:
            inherited = best[link[v]]
            best[v] = matched[v] if matched[v] > inherited else inherited

    # --- each text: its prefix text[:j] lies in state v_j; the longest suffix of it seen in training is min(best, j)
    out: list[int] = []
    for text in texts:
        v = 0
        longest = 0
        for j, c in enumerate(text, start=1):
            v = nxt[v][c]
            m = best[v] if best[v] < j else j
            if m > longest:
                longest = m
        out.append(longest)
    return out


class OverlapCache:
    """Per-text overlaps cached by content for one training set (bootstrap resamples reuse them)."""

    def __init__(self) -> None:
        self._train: Any = None
        self._values: dict[Hashable, int] = {}

    def overlaps(self, metric: Metric, samples: list[dict[str, Any]]) -> list[int]:
        train = training_sequences(metric)
        if train is not self._train:
            self._train = train
            self._values = {}
        keys = [content_key(units_of(metric.name, rec, i, "token-ids")) for i, rec in enumerate(samples)]
        missing = list(dict.fromkeys(k for k in keys if k not in self._values))
        if missing:
            if len(self._values) + len(missing) > CACHE_LIMIT:
                self._values = {}
            self._values.update(zip(missing, longest_overlaps(missing, train)))
        return [self._values[k] for k in keys]


OVERLAP_RULE = (
    "The overlap of a continuation is the length, in token ids, of the longest contiguous run of its output_ids "
    "(context excluded) that occurs as a contiguous run inside a single training sequence of the cell's recipe "
    "(MetricContext.train_sequences; runs never span two training sequences); 0 if no id occurs in training. "
    "Computed exactly (generalized suffix automaton over the continuations, training streamed once). Short and empty rows (only under eval.stop_at_eos: true): a continuation that "
    "stopped at EOS is measured over the ids it has; an empty continuation has no overlap to measure and is not "
    "counted (an overlap of 0 would credit it as copying nothing). Units: always token ids (no `unit` param): the "
    "training sequences it compares with are token ids."
)


class DatasetOverlap(Metric):
    """Mean over continuations of the longest token overlap with the training sequences."""

    name = "dataset-overlap"
    description = (
        "Longest contiguous run of a continuation's token ids found in the recipe's training sequences, mean over "
        "continuations (the paper's average dataset overlap; lower = less copying)."
    )
    level = "sample"
    higher_is_better = False
    requires = ("output_ids",)
    modalities = ("text", "image")
    version = "1"
    params = ()
    definition = (
        OVERLAP_RULE + " The metric is the unweighted mean of the overlaps over the counted (non-empty) "
        "continuations, in tokens, with a mean ± 1.96·stderr interval whose n counts them (the paper's Table 2 "
        "'Dataset Overlap' average)."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._cache = OverlapCache()

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        values = self._cache.overlaps(self, samples)
        return [float(v) for v, rec in zip(values, samples) if rec["output_ids"]]  # empty rows are not counted
