"""``citation-blocked``: greedy decoding that may not reproduce the training data (the paper's citation blocker)."""

from __future__ import annotations

from typing import Any, Callable

from harness.api import Codec, ComposableDecoder, DecodeContext, InputError, ModelHandle, Param, Processor
from harness_plugins.decoders._ngram import CitationBlocker, NGramIndex, sequences_hash, word_start_rule

#: how many training-set indexes one decoder instance keeps (one per fitted model it decodes for)
INDEX_CACHE_SIZE = 4


class CitationBlocked(ComposableDecoder):
    """Definition (k = ``window``): greedy decoding where, at every step, if the row's last k tokens
    occur in the training sequences followed by token t, t's logit is set to −inf before the argmax.
    So no (k+1)-gram of the training sequences is ever produced.

    * The window holds generated tokens only; with fewer than k generated tokens nothing is blocked.
      With ``include_context`` the window may reach back into the prompt (context + output), so no
      (k+1)-gram of context + output that ends in the output is a training (k+1)-gram.
    * ``word_boundary``: a banned token is only banned if it *starts a new word* (see
      ``ngram.word_start_rule``: a leading space/▁/Ġ/Ċ in its tokenizer piece or decoded text, EOS and
      special tokens; every token of a non-text codec). Tokens that continue the current word are
      let through, so the model may finish a word and is stopped at the next word start: the
      generated text then contains no training (k+1)-gram that ends in a word-initial token.
    * The training sequences are those the recipe fitted on (``DecodeContext.train_sequences``); the
      n-gram index (dict from k-gram to the next tokens that follow it) is built once per distinct
      training set and cached on the decoder instance, keyed by a SHA-256 of the sequences; a call
      with the very list object of the previous call (the runner passes one list to every batch)
      reuses its index without rehashing, so that list must not be mutated in between.
    * ``blocked_steps`` (``Generation.extras``) counts the steps at which the ban changed the row's argmax
      (EOS already suppressed under the fixed-length policy). In a composition the blocker runs in the
      "adjust" stage, before any temperature or truncation, on the scores of the parts before it; with a
      sampling part, it counts the steps at which the ban removed the most likely remaining token.
    """

    name = "citation-blocked"
    description = "Greedy that never reproduces a (window+1)-gram of the recipe's training sequences."
    version = "1"
    stage = "adjust"
    params = (
        Param("window", int, default=5, min=1, help="k: the last k tokens are looked up in the training data"),
        Param("word_boundary", bool, default=False, help="ban only tokens that start a new word (let a word finish)"),
        Param("include_context", bool, default=False, help="the k-token window may span the prompt"),
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._indexes: dict[tuple[str, int], NGramIndex] = {}
        self._word_rule: tuple[Codec, Callable[[int], bool]] | None = None
        self._last: tuple[list[list[int]], NGramIndex] | None = None

    def index_for(self, sequences: list[list[int]]) -> NGramIndex:
        """The k-gram → next-tokens index of ``sequences``, built once per distinct training set."""
        k = self.option("window")
        if self._last is not None and self._last[0] is sequences:  # the same list object as the last batch
            return self._last[1]
        key = (sequences_hash(sequences), k)
        index = self._indexes.get(key)
        if index is None:
            index = NGramIndex(k)
            for seq in sequences:
                index.add_sequence(seq)
            index.freeze()
            if len(self._indexes) >= INDEX_CACHE_SIZE:
                self._indexes.pop(next(iter(self._indexes)))
            self._indexes[key] = index
        self._last = (sequences, index)  # holding the list keeps its identity from being reused
        return index

    def word_rule(self, codec: Codec) -> Callable[[int], bool]:
        if self._word_rule is None or self._word_rule[0] is not codec:
            self._word_rule = (codec, word_start_rule(codec))
        return self._word_rule[1]

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        if ctx.train_sequences is None:
            raise InputError(
                "citation-blocked needs a recipe that trains: it blocks the recipe's training sequences, and this "
                "cell's recipe has none (pair the decoder with a training recipe in `matrix:`, or give the `none` "
                "recipe a `train: {dataset: ...}` block naming the sequences to block)"
            )
        index = self.index_for(ctx.train_sequences)
        rule = self.word_rule(handle.codec) if self.option("word_boundary") else None
        return [CitationBlocker(index, self.option("include_context"), rule, rows=len(contexts))]
