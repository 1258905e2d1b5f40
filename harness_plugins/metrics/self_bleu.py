"""Self-BLEU: leave-one-out sentence BLEU of each continuation against all the others (lower = more diverse).

Computing it naively calls sacrebleu N times with N-1 references each, O(N²·L). Here every text is tokenized
and n-gram-counted once; per n-gram we keep the largest count and the runner-up from a *different* prompt, so
the clipped count against "all references but my own prompt" is O(1), and the closest other reference
length comes from a sorted length table. The BLEU formula reproduces sacrebleu 2.x ``BLEU.compute_bleu`` with
``effective_order=True`` (tests pin agreement with ``sacrebleu.BLEU.sentence_score`` to 1e-9).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from typing import Any, Hashable, Sequence

from harness.api import Metric, Param

#: sacrebleu tokenizer names, plus "ids": output_ids joined by single spaces, tokenized by sacrebleu's "none"
TOKENIZERS = ("13a", "none", "intl", "char", "ids")
SMOOTH_METHODS = ("floor", "none", "add-k", "exp")

_Ngram = tuple[str, ...]
#: preprocessed texts kept per metric instance (one corpus and its bootstrap resamples fit easily)
_CACHE_LIMIT = 200_000


class _Text:
    """One preprocessed text: its n-gram counts (orders 1..max_order), length and per-order n-gram totals."""

    __slots__ = ("counts", "length", "totals")

    def __init__(self, tokens: list[str], max_order: int):
        counts: Counter[_Ngram] = Counter()
        n_tok = len(tokens)
        for n in range(1, max_order + 1):
            for i in range(n_tok - n + 1):
                counts[tuple(tokens[i : i + n])] += 1
        self.counts = counts
        self.length = n_tok
        self.totals = [max(n_tok - k, 0) for k in range(max_order)]


def _bleu(
    correct: Sequence[float],
    total: Sequence[float],
    sys_len: int,
    ref_len: int,
    smooth_method: str,
    smooth_value: float,
    max_order: int,
) -> float:
    """Sentence BLEU (0-100) from sufficient statistics, with sacrebleu's smoothing and effective order.

    Mirrors the semantics of sacrebleu's ``compute_bleu(..., effective_order=True)`` operation for operation,
    so results agree to the last bit: no unigram match → 0; add-k adds k to matches and totals of orders ≥ 2;
    the geometric mean stops before the first order with no hypothesis n-grams; a zero precision under
    ``none`` smoothing makes the score 0 (sacrebleu floors log(0) at -9999999999).
    """
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    if not any(correct):
        return 0.0
    logs: list[float] = []
    mteval = 1.0
    for k in range(max_order):
        c, t = correct[k], total[k]
        if smooth_method == "add-k" and k > 0:
            c += smooth_value
            t += smooth_value
        if t == 0:
            break
        if c == 0:
            if smooth_method == "exp":
                mteval *= 2
                p = 100.0 / (mteval * t)
            elif smooth_method == "floor":
                p = 100.0 * smooth_value / t
            else:
                return 0.0  # exp(-9999999999 / order) underflows to exactly 0.0 in sacrebleu too
        else:
            p = 100.0 * c / t
        logs.append(math.log(p) if p != 0.0 else -9999999999)
    return bp * math.exp(sum(logs) / len(logs))


def _closest_other_length(
    hyp_len: int, lengths: list[int], avail: dict[int, int], own: Counter[int] | None
) -> int:
    """Closest reference length excluding the hypothesis's own prompt; ties go to the shorter (sacrebleu rule).

    ``lengths`` is the sorted distinct lengths of all texts, ``avail`` their counts, ``own`` the counts of the
    hypothesis's own group, which are not references.
    """

    def usable(d: int) -> bool:
        return avail[d] - (own[d] if own else 0) > 0

    pos = bisect_left(lengths, hyp_len)
    lo = pos - 1
    while lo >= 0 and not usable(lengths[lo]):
        lo -= 1
    hi = pos
    while hi < len(lengths) and not usable(lengths[hi]):
        hi += 1
    if hi == len(lengths):
        return lengths[lo]
    if lo < 0:
        return lengths[hi]
    # lengths[lo] < hyp_len <= lengths[hi]; a tie goes to the shorter reference
    return lengths[hi] if lengths[hi] - hyp_len < hyp_len - lengths[lo] else lengths[lo]


def sacrebleu_tokenizer(tokenize: str) -> str:
    """The sacrebleu tokenizer behind a ``tokenize`` choice ("ids" texts are already split on spaces)."""
    return "none" if tokenize == "ids" else tokenize


def ids_text(rec: dict[str, Any], position: int, metric_name: str) -> str:
    """output_ids as the BLEU text of tokenize=ids: decimal ids joined by single spaces."""
    ids = rec.get("output_ids")
    if not isinstance(ids, (list, tuple)):
        raise TypeError(
            f"{metric_name}: output_ids of record {position} (prompt_id {rec.get('prompt_id')!r}) must be a list "
            f"of token ids, got {type(ids).__name__}"
        )
    return " ".join(str(int(t)) for t in ids)


def _exclusion_key(rec: dict[str, Any], position: int) -> Hashable:
    """Records sharing this key never serve as each other's references (same prompt, or same bootstrap copy)."""
    if "prompt_id" in rec and rec["prompt_id"] is not None:
        pid = rec["prompt_id"]
        return ("prompt", tuple(pid) if isinstance(pid, list) else pid)
    if "_index" in rec:  # a bootstrap copy of a record without prompt_id (see harness.stats)
        return ("index", rec["_index"])
    return ("position", position)


def _self_bleu_per_text(
    texts: Sequence[_Text], keys: Sequence[Hashable], max_order: int, smooth_method: str, smooth_value: float
) -> list[float]:
    """Leave-one-prompt-out sentence BLEU of every text, in input order (see :class:`SelfBLEU`)."""
    if len(texts) != len(keys):
        raise ValueError("texts and keys must have the same length")
    # group members and the per-group max count of every n-gram (the group's contribution as a reference)
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    if len(members) < 2:
        raise ValueError(
            f"self-bleu needs texts from at least 2 different prompts (got {len(texts)} text(s), all from "
            "one prompt): with leave-one-prompt-out there would be no references"
        )
    group_max: dict[Hashable, Counter[_Ngram] | dict[_Ngram, int]] = {}
    for key, idx in members.items():
        if len(idx) == 1:
            group_max[key] = texts[idx[0]].counts
        else:
            merged: dict[_Ngram, int] = {}
            for i in idx:
                for ng, c in texts[i].counts.items():
                    if c > merged.get(ng, 0):
                        merged[ng] = c
            group_max[key] = merged

    # per n-gram: the best count with its group, and the best count among the other groups
    best: dict[_Ngram, tuple[int, Hashable]] = {}
    second: dict[_Ngram, int] = {}
    for key, counts in group_max.items():
        for ng, c in counts.items():
            b = best.get(ng)
            if b is None:
                best[ng] = (c, key)
            elif c > b[0]:
                second[ng] = b[0]
                best[ng] = (c, key)
            elif c > second.get(ng, 0):
                second[ng] = c

    avail: dict[int, int] = Counter(t.length for t in texts)
    lengths = sorted(avail)
    own_lengths: dict[Hashable, Counter[int]] = {
        key: Counter(texts[i].length for i in idx) for key, idx in members.items()
    }

    scores: list[float] = []
    for text, key in zip(texts, keys):
        correct = [0] * max_order
        for ng, c in text.counts.items():
            b, bkey = best[ng]
            r = b if bkey != key else second.get(ng, 0)
            if r:
                correct[len(ng) - 1] += c if c < r else r
        ref_len = _closest_other_length(text.length, lengths, avail, own_lengths[key])
        scores.append(
            _bleu(correct, text.totals, text.length, ref_len, smooth_method, smooth_value, max_order)
        )
    return scores


class SelfBLEU(Metric):
    """Texygen-style Self-BLEU with sacrebleu tokenization and smoothing, leave-one-prompt-out."""

    name = "self-bleu"
    description = (
        "Mean sentence BLEU (0-100, sacrebleu settings) of each continuation against all continuations of other "
        "prompts as references; lower means a more diverse set of generations."
    )
    level = "corpus"
    higher_is_better = False
    requires = ("output_text",)
    modalities = ("text",)
    version = "1"
    params = (
        Param("max_order", int, default=4, min=1, max=8, help="highest n-gram order (BLEU-n)"),
        Param("tokenize", str, default="13a", choices=TOKENIZERS,
              help="sacrebleu tokenizer name, or 'ids': score output_ids (joined by spaces, tokenizer 'none')"),
        Param("smooth", str, default="floor", choices=SMOOTH_METHODS,
              help="sacrebleu smoothing method ('floor' with 0.1 equals NLTK method1, as in Texygen)"),
        Param("smooth_value", float, default=0.1, min=0.0,
              help="epsilon for 'floor', k for 'add-k' (ignored by 'none' and 'exp')"),
        Param("lowercase", bool, default=False, help="lowercase texts before tokenizing"),
    )
    definition = (
        "Self-BLEU = (1/N) * sum over records i of BLEU_i, in 0-100. BLEU_i is sacrebleu sentence BLEU "
        "(sacrebleu.BLEU(tokenize=`tokenize`, smooth_method=`smooth`, smooth_value=`smooth_value`, "
        "max_ngram_order=`max_order`, lowercase=`lowercase`, effective_order=True).sentence_score) of output_text "
        "i as the hypothesis against, as references, the output_text of every record whose prompt_id differs from "
        "record i's (leave-one-prompt-out; records without prompt_id count as their own prompt). Multi-reference "
        "rules are sacrebleu's: each hypothesis n-gram count is clipped by its maximum count in any single "
        "reference, and the brevity penalty uses the reference length closest to the hypothesis length, ties "
        "going to the shorter. Texts are right-stripped, optionally lowercased, then tokenized once. Excluding "
        "the same prompt (not just the same record) means that in a bootstrap resample a prompt drawn twice "
        "is never its own reference (which would score 100), and that several continuations of one prompt are "
        "not compared with each other: the metric measures diversity across prompts. Computed exactly "
        "(no reference subsampling); needs texts from at least 2 prompts. With tokenize=ids the text of record i "
        "is its output_ids written as decimal integers joined by single spaces (\"12 7 7 431\") and "
        "sacrebleu's tokenize='none' is used, so the BLEU n-grams are n-grams of the model's token ids "
        "(degen-style, tokenizer-specific); `lowercase` has no effect there. Short and empty rows (only under "
        "eval.stop_at_eos: true): a row cut to no tokens by EOS is neither a hypothesis nor a reference (its BLEU of 0 "
        "would credit it as maximally diverse) and N counts the non-empty texts (in the bootstrap, each "
        "non-empty text's BLEU_i is scaled by (all texts) / N and an empty one contributes 0); a short text is "
        "scored as it is, with BLEU's brevity penalty against the closest other length. Units: fixed by "
        "`tokenize`, not by the `unit` param of the lexical metrics: BLEU's tokens are sacrebleu's (13a splits "
        "punctuation off words), so they are not the words unit (output_text.split()); tokenize=ids is the "
        "token-ids unit."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._cache: dict[str, _Text] = {}
        self._cache_settings: tuple[Any, ...] | None = None
        self._tokenizer: Any = None
        if self.option("tokenize") == "ids":
            self.requires = ("output_ids",)

    def _settings(self) -> tuple[int, str, str, float, bool]:
        cfg = self.config
        max_order = int(cfg.get("max_order", 4))
        tokenize = str(cfg.get("tokenize", "13a"))
        smooth = str(cfg.get("smooth", "floor"))
        smooth_value = float(cfg.get("smooth_value", 0.1))
        lowercase = bool(cfg.get("lowercase", False))
        if not 1 <= max_order <= 8:
            raise ValueError(f"self-bleu: max_order must be in 1..8, got {max_order}")
        if tokenize not in TOKENIZERS:
            raise ValueError(f"self-bleu: unknown tokenize {tokenize!r}; choose from {TOKENIZERS}")
        if smooth not in SMOOTH_METHODS:
            raise ValueError(f"self-bleu: unknown smooth {smooth!r}; choose from {SMOOTH_METHODS}")
        return max_order, tokenize, smooth, smooth_value, lowercase

    def _prepare(self, text: str, settings: tuple[int, str, str, float, bool]) -> _Text:
        """Tokenize and count one text, cached: bootstrap resamples score the same texts many times."""
        if settings != self._cache_settings:
            from sacrebleu.metrics.bleu import BLEU

            self._cache = {}
            self._cache_settings = settings
            self._tokenizer = BLEU(tokenize=sacrebleu_tokenizer(settings[1])).tokenizer
        cached = self._cache.get(text)
        if cached is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            max_order, _, _, _, lowercase = settings
            line = text.lower() if lowercase else text
            cached = _Text(self._tokenizer(line.rstrip()).split(), max_order)
            self._cache[text] = cached
        return cached

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        return math.fsum(self.score_per_text(samples)) / len(samples)

    def score_per_text(self, samples: list[dict[str, Any]]) -> list[float]:
        """BLEU_i of every record, in input order (for inspection; the metric is their mean)."""
        if len(samples) < 2:
            raise ValueError(f"self-bleu needs at least 2 texts, got {len(samples)}")
        settings = self._settings()
        texts: list[_Text] = []
        keys: list[Hashable] = []
        for pos, rec in enumerate(samples):
            text = ids_text(rec, pos, self.name) if settings[1] == "ids" else rec.get("output_text")
            if not isinstance(text, str):
                raise TypeError(
                    f"self-bleu: output_text of record {pos} (prompt_id {rec.get('prompt_id')!r}) "
                    f"must be a string, got {type(text).__name__}"
                )
            texts.append(self._prepare(text, settings))
            keys.append(_exclusion_key(rec, pos))
        max_order, _, smooth, smooth_value, _ = settings
        # a row EOS cut to nothing is not scored (definition); a full-length text that happens to have no word
        # tokens (e.g. only whitespace) is a real output and scored as it is
        scored = [i for i, t in enumerate(texts) if t.length > 0 or not samples[i].get("stopped_at_eos")]
        if len(scored) == len(texts):
            return _self_bleu_per_text(texts, keys, max_order, smooth, smooth_value)
        values = _self_bleu_per_text([texts[i] for i in scored], [keys[i] for i in scored], max_order, smooth, smooth_value)
        out = [0.0] * len(texts)
        for i, v in zip(scored, values):
            out[i] = v * len(texts) / len(scored)
        return out
