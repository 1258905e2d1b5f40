"""N-gram indexes and the two n-gram bans built on them: no-repeat-ngram and the citation blocker.

An :class:`NGramIndex` of order k maps every k-token tuple to the set of tokens that followed it;
a ban at a step looks up the row's last k tokens (one dict lookup) and sets the followers' scores to
-inf. Works on any token ids (text or image codecs). No torch at import time.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import Any, Callable, Collection, Iterable, Sequence

from harness.api import Codec, History
from harness_plugins.decoders._loop import ban


class NGramIndex:
    """Map from a k-gram (tuple of ``order`` token ids) to the tokens that follow it somewhere."""

    def __init__(self, order: int):
        if order < 0:
            raise ValueError("order must be ≥ 0")
        self.order = order
        self.table: dict[tuple[int, ...], set[int]] = {}  # tuples of followers once frozen

    def add_sequence(self, seq: Sequence[int]) -> None:
        """Index every (order + 1)-gram of ``seq``."""
        k = self.order
        table = self.table
        seq = list(seq)
        for i in range(len(seq) - k):
            key = tuple(seq[i : i + k])
            followers = table.get(key)
            if followers is None:
                table[key] = {seq[i + k]}
            else:
                followers.add(seq[i + k])

    def add_last(self, seq: Sequence[int]) -> None:
        """Index the (order + 1)-gram that ends at the last token of ``seq`` (incremental use)."""
        k = self.order
        if len(seq) < k + 1:
            return
        key = tuple(seq[len(seq) - k - 1 : len(seq) - 1])
        self.table.setdefault(key, set()).add(seq[-1])

    def freeze(self) -> "NGramIndex":
        """Store the followers as tuples: the index stops changing, and the garbage collector stops
        traversing it (a big index of sets makes every full collection cost ~0.1 s per 500k entries)."""
        self.table = {key: tuple(sorted(followers)) for key, followers in self.table.items()}  # type: ignore[misc]
        return self

    def followers(self, key: tuple[int, ...] | None) -> Collection[int] | None:
        return None if key is None else self.table.get(key)

    def __len__(self) -> int:
        return len(self.table)

    def contains(self, gram: Sequence[int]) -> bool:
        """Whether the (order + 1)-gram ``gram`` occurs in the indexed sequences."""
        followers = self.table.get(tuple(gram[:-1]))
        return followers is not None and gram[-1] in followers


def sequences_hash(sequences: Iterable[Sequence[int]]) -> str:
    """A content hash of a list of token sequences (lengths included, so boundaries count)."""
    digest = hashlib.sha256()
    for seq in sequences:
        digest.update(len(seq).to_bytes(8, "little"))
        digest.update(array("q", seq).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- word starts

#: leading markers of a word-initial piece: SentencePiece ▁, byte-level BPE Ġ (space) and Ċ (newline)
WORD_MARKERS = ("▁", "Ġ", "Ċ", "ĉ")


def word_start_rule(codec: Codec) -> Callable[[int], bool]:
    """``starts_word(token_id)`` for a codec, memoised per token id.

    A token *starts a word* when:
    * the codec is not a text codec (images have no words: every token is a boundary), or
    * it is the codec's EOS token, or one of the tokenizer's special tokens, or
    * the codec wraps a Hugging Face tokenizer (``codec.tokenizer.convert_ids_to_tokens``) and the
      token's piece begins with a whitespace character or one of ``▁ Ġ Ċ ĉ``, or
    * otherwise, ``codec.decode([token_id])`` begins with a whitespace character or one of those markers.
    Every other token continues the current word (sub-word pieces, punctuation glued to a word).
    """
    memo: dict[int, bool] = {}
    if codec.modality != "text":
        return lambda token: True
    tokenizer = getattr(codec, "tokenizer", None)
    to_piece = getattr(tokenizer, "convert_ids_to_tokens", None)
    special = set(getattr(tokenizer, "all_special_ids", None) or ())
    if codec.eos_token_id is not None:
        special.add(codec.eos_token_id)

    def starts_word(token: int) -> bool:
        found = memo.get(token)
        if found is None:
            if token in special:
                found = True
            else:
                text = to_piece(token) if to_piece is not None else None
                if not isinstance(text, str):
                    text = codec.decode([token])
                found = bool(text) and (text[0].isspace() or text[0] in WORD_MARKERS)
            memo[token] = found
        return found

    return starts_word


# --------------------------------------------------------------------------- processors


class NoRepeatNGram:
    """Ban every token that would complete an n-gram already present in the row (transformers' rule).

    With ``include_context`` the row is context + output (as transformers does for decoder-only
    models); without it, only the generated tokens count, both for the n-grams and for the prefix.
    """

    def __init__(self, n: int, include_context: bool = True):
        self.n = n
        self.include_context = include_context
        self.indexes: list[NGramIndex] | None = None
        self.seqs: list[list[int]] = []
        self.counted: list[int] = []

    def _sync(self, history: History) -> None:
        if self.indexes is None:
            self.seqs = [list(ctx) if self.include_context else [] for ctx in history.contexts]
            self.indexes = []
            for seq in self.seqs:
                index = NGramIndex(self.n - 1)
                index.add_sequence(seq)
                self.indexes.append(index)
            self.counted = [0] * len(history.contexts)
        for row, gen in enumerate(history.generated):
            while self.counted[row] < len(gen):
                self.seqs[row].append(gen[self.counted[row]])
                self.counted[row] += 1
                self.indexes[row].add_last(self.seqs[row])

    def __call__(self, scores: Any, history: History) -> Any:
        self._sync(history)
        assert self.indexes is not None
        rows, tokens = [], []
        for row, alive in enumerate(history.alive):
            if not alive:
                continue
            followers = self.indexes[row].followers(history.tail(row, self.n - 1, self.include_context))
            if followers:
                rows.extend([row] * len(followers))
                tokens.extend(followers)
        return ban(scores, rows, tokens)


class CitationBlocker:
    """Forbid reproducing any (k+1)-gram of the training sequences (see ``citation_blocked``).

    ``counts[row]`` is the number of steps at which the ban removed the row's most likely token among the
    scores it was given (under greedy: the ban changed the pick); reported as ``blocked_steps``.
    """

    def __init__(
        self, index: NGramIndex, include_context: bool, starts_word: Callable[[int], bool] | None, rows: int = 0
    ):
        self.index = index
        self.include_context = include_context
        self.starts_word = starts_word
        self.counts: list[int] = [0] * rows

    def banned(self, history: History, row: int) -> list[int]:
        followers = self.index.followers(history.tail(row, self.index.order, self.include_context))
        if not followers:
            return []
        if self.starts_word is None:
            return list(followers)
        return [t for t in followers if self.starts_word(t)]

    def __call__(self, scores: Any, history: History) -> Any:
        if not self.counts:
            self.counts = [0] * scores.shape[0]
        rows, tokens = [], []
        hit_rows = []
        for row, alive in enumerate(history.alive):
            if not alive:
                continue
            banned = self.banned(history, row)
            if banned:
                hit_rows.append((row, banned))
                rows.extend([row] * len(banned))
                tokens.extend(banned)
        if not rows:
            return scores
        best = scores.argmax(-1).tolist()
        for row, banned in hit_rows:
            if best[row] in banned:
                self.counts[row] += 1
        return ban(scores, rows, tokens)

    def row_extras(self) -> list[dict[str, Any]]:
        return [{"blocked_steps": count} for count in self.counts]
