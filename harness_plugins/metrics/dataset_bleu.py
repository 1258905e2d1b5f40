"""Dataset BLEU: sentence BLEU of each continuation against the whole training set (copying; lower = less).

sacrebleu's multi-reference rules clip each hypothesis n-gram count by its largest count in any single
reference and take the reference length closest to the hypothesis length (ties to the shorter). Both depend
on the references only through per-n-gram maximum counts and the set of lengths, so they are computed once:
the training sequences are scanned once, keeping the maximum count of just the n-grams that occur in some
hypothesis, and the closest length comes from the sorted distinct lengths. Agreement with
``sacrebleu.BLEU.sentence_score(hyp, all_training_sequences)`` (``brevity_penalty: true``), and with its
n-gram precision part alone (the default), is pinned by tests to 1e-9.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from harness.api import Metric, Param

from ._common import training_sequences, units_of
from .self_bleu import SMOOTH_METHODS, _bleu, _closest_other_length, sacrebleu_tokenizer

TOKENIZERS = ("ids", "13a", "none", "intl", "char")


def _grams(tokens: Sequence[Any], n: int) -> Counter[tuple[Any, ...]]:
    return Counter(zip(*(tokens[k:] for k in range(n))))


def dataset_bleu_scores(
    hypotheses: list[list[Any]],
    references: list[list[Any]],
    max_order: int,
    smooth_method: str,
    smooth_value: float,
    brevity_penalty: bool = True,
) -> list[float]:
    """Sentence BLEU of each tokenized hypothesis against all tokenized references (sacrebleu semantics).

    ``brevity_penalty`` False: the geometric mean of the clipped n-gram precisions alone (BP = 1).
    """
    if not references:
        raise ValueError("dataset-bleu: the training set is empty")
    hyp_counts = [[_grams(h, n) for n in range(1, max_order + 1)] for h in hypotheses]
    wanted: list[set[tuple[Any, ...]]] = [set() for _ in range(max_order)]
    for per_order in hyp_counts:
        for k, counts in enumerate(per_order):
            wanted[k].update(counts)
    # max count over references of every n-gram some hypothesis has (the clipping bound)
    ref_max: list[dict[tuple[Any, ...], int]] = [{} for _ in range(max_order)]
    for ref in references:
        for k in range(max_order):
            if not wanted[k] or len(ref) <= k:
                continue
            counts = _grams(ref, k + 1)
            best = ref_max[k]
            for gram in counts.keys() & wanted[k]:
                c = counts[gram]
                if c > best.get(gram, 0):
                    best[gram] = c
    lengths_count = Counter(len(r) for r in references)
    lengths = sorted(lengths_count)
    scores: list[float] = []
    for hyp, per_order in zip(hypotheses, hyp_counts):
        correct = [0] * max_order
        for k, counts in enumerate(per_order):
            best = ref_max[k]
            for gram, c in counts.items():
                r = best.get(gram, 0)
                correct[k] += c if c < r else r
        totals = [max(len(hyp) - k, 0) for k in range(max_order)]
        ref_len = _closest_other_length(len(hyp), lengths, lengths_count, None) if brevity_penalty else len(hyp)
        scores.append(_bleu(correct, totals, len(hyp), ref_len, smooth_method, smooth_value, max_order))
    return scores


class DatasetBLEU(Metric):
    """Per continuation, sacrebleu sentence BLEU with every training sequence as a reference; mean over texts."""

    name = "dataset-bleu"
    description = (
        "Mean sentence BLEU (0-100, sacrebleu settings as self-bleu; n-gram precision only unless "
        "brevity_penalty) of each continuation against all of the recipe's training sequences as references, on "
        "token ids by default: how much generations copy the training data (lower = less copying)."
    )
    level = "sample"
    higher_is_better = False
    requires = ("output_ids",)
    modalities = ("text",)
    version = "1"
    params = (
        Param("max_order", int, default=4, min=1, max=8, help="highest n-gram order (BLEU-n)"),
        Param("tokenize", str, default="ids", choices=TOKENIZERS,
              help="'ids': output_ids and training ids joined by spaces (tokenizer 'none'); otherwise a sacrebleu "
                   "tokenizer on output_text and on the training sequences decoded by the model's codec"),
        Param("smooth", str, default="floor", choices=SMOOTH_METHODS, help="sacrebleu smoothing method"),
        Param("smooth_value", float, default=0.1, min=0.0,
              help="epsilon for 'floor', k for 'add-k' (ignored by 'none' and 'exp')"),
        Param("lowercase", bool, default=False, help="lowercase texts before tokenizing (text tokenizers only)"),
        Param("brevity_penalty", bool, default=False,
              help="multiply by BLEU's brevity penalty against the closest training length (off: n-gram precision "
                   "only, since continuations are much shorter than training sequences)"),
    )  # fmt: skip
    definition = (
        "Dataset-BLEU = (1/N) * sum over records i of BLEU_i, in 0-100, where BLEU_i is sacrebleu sentence BLEU "
        "(sacrebleu.BLEU(tokenize, smooth_method=`smooth`, smooth_value=`smooth_value`, max_ngram_order="
        "`max_order`, lowercase, effective_order=True).sentence_score) of continuation i as the hypothesis "
        "against every training sequence of the cell's recipe (MetricContext.train_sequences) as references. "
        "Default tokenize=ids: hypothesis and references are token ids written as decimal integers joined by "
        "single spaces, scored with sacrebleu's tokenize='none'; with a text tokenizer (13a, none, intl, char) "
        "the hypothesis is output_text and each reference is its training sequence decoded by the evaluated "
        "model's codec. Multi-reference rules are sacrebleu's: each n-gram count is clipped by its largest count "
        "in any single training sequence. Brevity penalty: off by default (brevity_penalty=false), so BLEU_i is "
        "the geometric mean of the clipped n-gram precisions alone, i.e. sacrebleu's score divided by its BP "
        "(computed with ref_len = hypothesis length): it measures copying, and a continuation is not penalised "
        "for being shorter than the training sequences it is compared with (with the paper's 96-token "
        "continuations against 256-token training sequences, sacrebleu's BP = exp(1 - 256/96) ≈ 0.19 for every "
        "continuation would scale all scores by one near-constant factor; the paper's maximum dataset BLEU of "
        "32.1 on 96-token texts exceeds the ≈ 19 that factor would allow, so the paper evidently reports it "
        "without that penalty). With "
        "brevity_penalty=true BLEU_i is sacrebleu's sentence BLEU with the brevity penalty against the training "
        "length closest to the hypothesis length (ties to the shorter). Defaults: BLEU-4, `floor` smoothing 0.1. "
        "Sample level: mean ± 1.96·stderr over the scored continuations. Short and empty rows (only under "
        "eval.stop_at_eos: true): a continuation with no tokens is not scored (its BLEU of 0 would credit it as "
        "copying nothing) and the interval's n counts the scored ones; a short continuation is scored as it is "
        "(penalised for its length only with brevity_penalty=true). Computed exactly against the full training "
        "set (no subsampling); equal to sacrebleu to 1e-9. Units: fixed by `tokenize`, not by the `unit` param of "
        "the lexical metrics: the default tokenize=ids is the token-ids unit; the text tokenizers are sacrebleu's "
        "(13a splits punctuation off words), not the words unit (output_text.split())."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        if self.option("tokenize") != "ids":
            self.requires = ("output_text",)

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        train = training_sequences(self)
        max_order = int(self.option("max_order"))
        tokenize = str(self.option("tokenize"))
        smooth = str(self.option("smooth"))
        smooth_value = float(self.option("smooth_value"))
        if tokenize not in TOKENIZERS:
            raise ValueError(f"dataset-bleu: unknown tokenize {tokenize!r}; choose from {TOKENIZERS}")
        if smooth not in SMOOTH_METHODS:
            raise ValueError(f"dataset-bleu: unknown smooth {smooth!r}; choose from {SMOOTH_METHODS}")
        if tokenize == "ids":
            # decimal strings of ints are distinct exactly when the ints are: count n-grams of ints directly
            hyps = [[int(t) for t in units_of(self.name, rec, i, "token-ids")] for i, rec in enumerate(samples)]
            refs = [[int(t) for t in seq] for seq in train]
        else:
            hyps, refs = self._text_tokens(samples, train, tokenize)
        hyps = [h for h in hyps if h]  # an empty continuation is not scored (see the definition)
        if not hyps:
            return []
        return dataset_bleu_scores(hyps, refs, max_order, smooth, smooth_value, bool(self.option("brevity_penalty")))

    def _text_tokens(
        self, samples: list[dict[str, Any]], train: list[list[int]], tokenize: str
    ) -> tuple[list[list[str]], list[list[str]]]:
        from sacrebleu.metrics.bleu import BLEU

        codec = getattr(self.context, "codec", None)
        if codec is None:
            raise ValueError(
                f"dataset-bleu with tokenize={tokenize} needs the model's codec to decode the training sequences "
                "(use tokenize=ids with harness score)"
            )
        tokenizer = BLEU(tokenize=sacrebleu_tokenizer(tokenize)).tokenizer
        lowercase = bool(self.option("lowercase"))

        def tokens(text: str) -> list[str]:
            return tokenizer((text.lower() if lowercase else text).rstrip()).split()

        hyps = []
        for i, rec in enumerate(samples):
            text = rec.get("output_text")
            if not isinstance(text, str):
                raise TypeError(f"dataset-bleu: output_text of record {i} must be a string, got {type(text).__name__}")
            hyps.append(tokens(text))
        return hyps, [tokens(codec.decode(seq)) for seq in train]
