"""Seeded draws of eval contexts and training sequences, and the check that they are disjoint.

Protocol (documented in the README):

* Eval contexts of a dataset: documents are visited in a seeded order; each document with at least
  ``context_tokens + new_tokens`` tokens gives one context (its first ``context_tokens`` tokens) and a
  human reference continuation (the next ``new_tokens`` tokens), until ``contexts`` are drawn. These
  documents are *reserved*: no recipe trains on them.
* Training sequences: every non-reserved document is cut into non-overlapping windows of exactly
  ``tokens`` tokens; ``samples`` windows are drawn without replacement with a seeded RNG.
* Disjointness is checked, not assumed: no reserved document is used for training, and no 13-token run of
  an eval context or its reference (special tokens stripped) occurs anywhere in a training or held-out
  sequence (which catches the same passage inside another document). For images the probe is the whole
  image (context + reference): distinct images often share their top rows.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from harness.errors import InputError, RunError
from harness.store import canonical_json


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed derived from any JSON-able parts; stable across processes and platforms."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class TokenizedDocument:
    id: str
    ids: tuple[int, ...]
    label: str | None = None  # the document's class label (image datasets), carried to eval contexts


@dataclass(frozen=True)
class EvalContext:
    prompt_id: str
    dataset: str
    doc_id: str
    context_ids: list[int]
    reference_ids: list[int]
    label: str | None = None
    #: "image": the context is the top rows of an image and the reference the rest (see check_disjoint)
    modality: str = "text"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["label"] is None:  # text contexts store exactly what they did before images existed
            del out["label"]
        if out["modality"] == "text":
            del out["modality"]
        return out

    @property
    def probe(self) -> list[int]:
        """What must not occur inside a training sequence: the context (text), the whole image (image:
        different images often share their top rows, e.g. blank ones, so only a repeated image is a leak)."""
        return self.context_ids + self.reference_ids if self.modality == "image" else self.context_ids


@dataclass(frozen=True)
class TrainSample:
    doc_id: str
    start: int
    token_ids: list[int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def draw_contexts(
    docs: Sequence[TokenizedDocument], dataset: str, count: int, context_tokens: int, new_tokens: int, seed: int,
    modality: str = "text",
) -> list[EvalContext]:
    order = list(range(len(docs)))
    random.Random(derive_seed(seed, "eval-contexts", dataset)).shuffle(order)
    need = context_tokens + new_tokens
    out: list[EvalContext] = []
    for index in order:
        doc = docs[index]
        if len(doc.ids) < need:
            continue
        out.append(
            EvalContext(
                prompt_id=f"{dataset}/{doc.id}",
                dataset=dataset,
                doc_id=doc.id,
                context_ids=list(doc.ids[:context_tokens]),
                reference_ids=list(doc.ids[context_tokens:need]),
                label=doc.label,
                modality=modality,
            )
        )
        if len(out) == count:
            return out
    raise InputError(
        f'dataset "{dataset}": only {len(out)} documents have at least {need} tokens '
        f"(context_tokens + new_tokens), but eval.contexts asks for {count}; lower eval.contexts or the lengths"
    )


def draw_training(
    docs: Sequence[TokenizedDocument], dataset: str, reserved: set[str], samples: int, tokens: int, seed: int
) -> list[TrainSample]:
    windows: list[tuple[int, int]] = []
    for index, doc in enumerate(docs):
        if doc.id in reserved:
            continue
        for start in range(0, len(doc.ids) - tokens + 1, tokens):
            windows.append((index, start))
    if len(windows) < samples:
        raise InputError(
            f'dataset "{dataset}": only {len(windows)} non-overlapping windows of {tokens} tokens outside the eval '
            f"documents, but train.samples asks for {samples}; lower train.samples or train.tokens"
        )
    picked = random.Random(derive_seed(seed, "train-sequences", dataset)).sample(windows, samples)
    return [TrainSample(docs[i].id, start, list(docs[i].ids[start : start + tokens])) for i, start in picked]


#: length of the token n-grams whose overlap between eval text and training text counts as a leak
OVERLAP_NGRAM = 13


def check_disjoint(
    train: Sequence[TrainSample], contexts: Sequence[EvalContext], train_dataset: str,
    special_ids: frozenset[int] = frozenset(), ngram: int = OVERLAP_NGRAM, role: str = "training",
) -> dict[str, Any]:  # fmt: skip
    """Raise if an eval context comes from a ``role`` (training/held-out) document or shares text with a sequence.

    Text: special tokens (BOS, EOS, padding) are stripped from both sides, then no ``ngram``-token run of an
    eval context *or its reference continuation* may occur anywhere in a sequence: this finds a passage
    repeated inside another document, under another name, at any offset. Images: no whole image (context
    + reference) may recur (distinct images often share rows, e.g. blank ones, so only a repeat is a leak).
    Returns what was checked, for the manifest.
    """
    report: dict[str, Any] = {"role": role, "sequences": len(train), "eval_contexts": len(contexts)}
    if not train or not contexts:
        return report
    train_docs = {s.doc_id for s in train}
    for ctx in contexts:
        if ctx.dataset == train_dataset and ctx.doc_id in train_docs:
            raise RunError(f"eval context {ctx.prompt_id} comes from a {role} document of {train_dataset}")
    grams: dict[tuple[int, ...], EvalContext] = {}
    for ctx in contexts:
        for gram in _probe_grams(ctx, special_ids, ngram):
            grams.setdefault(gram, ctx)
    widths = sorted({len(g) for g in grams})
    for sample in train:
        ids = [t for t in sample.token_ids if t not in special_ids]
        for width in widths:
            for start in range(0, len(ids) - width + 1):
                hit = grams.get(tuple(ids[start : start + width]))
                if hit is not None:
                    raise RunError(
                        f"eval context {hit.prompt_id} shares {width} consecutive tokens (context and reference) with "
                        f"{role} sequence {sample.doc_id}@{sample.start} of {train_dataset}: eval and {role} data overlap"
                    )
    if any(c.modality == "image" for c in contexts):
        report["rule"] = "no eval image (context + reference) recurs inside a sequence"
    else:
        report |= {"rule": f"no {ngram}-token run of context or reference occurs in a sequence", "ngram": ngram,
                   "special_tokens_stripped": sorted(special_ids)}  # fmt: skip
    return report


def _probe_grams(ctx: EvalContext, special_ids: frozenset[int], ngram: int) -> list[tuple[int, ...]]:
    """What must not occur in a sequence: the whole image (image), or every ``ngram``-token run of context +
    reference with special tokens stripped (text; the whole probe when it is shorter)."""
    if ctx.modality == "image":
        return [tuple(ctx.probe)]
    ids = [t for t in ctx.context_ids + ctx.reference_ids if t not in special_ids]
    width = min(ngram, len(ids))
    return [tuple(ids[start : start + width]) for start in range(0, len(ids) - width + 1)]


def draw_heldout(
    docs: Sequence[TokenizedDocument], dataset: str, excluded: set[str], count: int, tokens: int, seed: int
) -> list[TrainSample]:
    """Up to ``count`` windows of ``tokens`` tokens from documents in neither the training nor the eval draw.

    These feed a recipe's curve (held-out loss, greedy TTR) and early stopping. Fewer come back when the
    dataset has no more such windows: the curve then rests on fewer sequences, which the caller reports.
    """
    windows = [
        (index, start)
        for index, doc in enumerate(docs)
        if doc.id not in excluded
        for start in range(0, len(doc.ids) - tokens + 1, tokens)
    ]
    picked = random.Random(derive_seed(seed, "heldout-sequences", dataset)).sample(windows, min(count, len(windows)))
    return [TrainSample(docs[i].id, start, list(docs[i].ids[start : start + tokens])) for i, start in picked]
