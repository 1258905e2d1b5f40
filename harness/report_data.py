"""The sample browser's data for ``harness report``: every continuation, packed small, with its marks precomputed.

The page must stay fast on 10,000 continuations and must not need Python to paint, so everything that needs
the token ids (which spans were copied from the training data, where each token sits in the text, the per-step
entropy) is computed here and embedded as short strings and index ranges; the page only decodes and paints.

Packing (decoded by ``report.js``; both sides use the 64 characters of :data:`ALPHABET`):

* **entropy**: one character per generated step, the step's entropy quantised to 0..63 on the scale
  [0, the largest step entropy in the report].
* **token offsets**: where each generated token sits in ``output_text``, as a flat list of (gap, length)
  pairs in UTF-16 code units (what JavaScript string indices count), written as base-32 varints: a value
  is split into 5-bit groups, low group first; characters 32..63 mark "more groups follow". When no token
  leaves a gap (a text codec's pieces tile the text) only the lengths are written, after a ``"."``.
  Offsets are known only when each token's text can be found: a text that is exactly the token ids separated
  by whitespace (image codecs), or the model's codec (``decode`` of one id; ``harness report`` asks the
  loader's ``load_codec``, which gives a codec only where that is cheap). Otherwise the copied
  spans are painted on the per-step strip only (which is token-indexed and needs no text positions).
* **copied spans**: ``[start, end)`` token index ranges of ``output_ids`` covered by an n-gram (``copy_ngram``
  tokens) that occurs in the cell's recipe's ``train_samples.jsonl``; overlapping matches are merged.
"""

from __future__ import annotations

import json
from array import array
from itertools import accumulate
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
LEVELS = len(ALPHABET)  # entropy quantisation levels
DEFAULT_COPY_NGRAM = 8
#: contexts per embedded JSON block: the page parses a block only when one of its contexts is shown
CHUNK_CONTEXTS = 200
#: characters of a context shown in the context chooser
LABEL_CHARS = 60


class TokenDecoder(Protocol):
    """What the report needs of a codec: the text of some ids (``harness.api.Codec.decode``)."""

    def decode(self, ids: Sequence[int]) -> str: ...


# --------------------------------------------------------------------------- packing


def pack_levels(values: Sequence[float], scale: float) -> str:
    """One character per value: ``value / scale`` quantised to 0..63 (NaN and negatives count as 0)."""
    top = LEVELS - 1
    if scale <= 0:
        return ALPHABET[0] * len(values)
    factor = top / scale
    # v > 0 is False for NaN, so NaN and negatives are level 0
    return "".join(ALPHABET[min(top, int(v * factor + 0.5))] if v > 0 else ALPHABET[0] for v in values)


def unpack_levels(text: str) -> list[int]:
    """The inverse of :func:`pack_levels` up to quantisation (tests; the page does this in JS)."""
    return [ALPHABET.index(c) for c in text]


def pack_ints(values: Iterable[int]) -> str:
    """Non-negative ints as base-32 varints over :data:`ALPHABET` (see the module docstring)."""
    out = []
    for v in values:
        if v < 0:
            raise ValueError(f"pack_ints: negative value {v}")
        while v >= 32:
            out.append(ALPHABET[32 + (v & 31)])
            v >>= 5
        out.append(ALPHABET[v])
    return "".join(out)


def unpack_ints(text: str) -> list[int]:
    """The inverse of :func:`pack_ints`."""
    values, current, shift = [], 0, 0
    for c in text:
        d = ALPHABET.index(c)
        if d >= 32:
            current |= (d - 32) << shift
            shift += 5
        else:
            values.append(current | (d << shift))
            current, shift = 0, 0
    return values


def embed_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: every ``<`` becomes ``\\u003c``.

    That covers ``</script>`` and ``<!--`` in any string (``<`` only ever occurs inside JSON strings, where
    ``\\u003c`` parses back to the same text), so no continuation can end the block or open markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --------------------------------------------------------------------------- copied spans


def _key_bytes(ids: Sequence[int]) -> bytes:
    return array("q", [int(i) for i in ids]).tobytes()


@dataclass
class TrainingGrams:
    """Every ``n``-gram of a recipe's training sequences, as fixed-width byte strings (fast to hash)."""

    n: int
    grams: set[bytes] = field(default_factory=set)

    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[int]], n: int) -> "TrainingGrams":
        width = 8 * n
        grams: set[bytes] = set()
        for seq in sequences:
            raw = _key_bytes(seq)
            grams.update(raw[i : i + width] for i in range(0, len(raw) - width + 1, 8))
        return cls(n, grams)

    def copied_spans(self, ids: Sequence[int]) -> list[list[int]]:
        """Merged ``[start, end)`` token ranges of ``ids`` covered by an n-gram of the training sequences."""
        n, width = self.n, 8 * self.n
        if not self.grams or len(ids) < n:
            return []
        raw = _key_bytes(ids)
        spans: list[list[int]] = []
        for i in range(len(ids) - n + 1):
            if raw[8 * i : 8 * i + width] in self.grams:
                if spans and spans[-1][1] >= i:
                    spans[-1][1] = i + n
                else:
                    spans.append([i, i + n])
        return spans


def read_training_grams(path: Path, n: int) -> TrainingGrams | None:
    """The n-grams of a ``train_samples.jsonl`` (``token_ids`` per line); None when the file is absent."""
    if not path.is_file():
        return None
    sequences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            ids = json.loads(line).get("token_ids")
            if isinstance(ids, list):
                sequences.append(ids)
    return TrainingGrams.from_sequences(sequences, n)


# --------------------------------------------------------------------------- token positions


def _utf16_index(text: str) -> list[int] | None:
    """Code point index → UTF-16 index (None when they agree: no character outside the BMP)."""
    if text.isascii() or len(text.encode("utf-16-le")) == 2 * len(text):
        return None
    index, at = [], 0
    for c in text:
        index.append(at)
        at += 2 if ord(c) > 0xFFFF else 1
    index.append(at)
    return index


def align_pieces(text: str, pieces: Sequence[str]) -> list[tuple[int, int]] | None:
    """Each piece's ``(start, end)`` in ``text`` (UTF-16 units), found left to right; None if one is missing.

    Pieces may be separated by other characters (e.g. the spaces an image codec puts between ids); a piece
    that cannot be found after the previous one (a token that decodes to half a character) makes the whole
    alignment unknown rather than wrong."""
    if "".join(pieces) == text:  # the usual case for a text codec: the pieces tile the text
        ends = list(accumulate(len(p) for p in pieces))
        spans = list(zip([0, *ends[:-1]], ends))
        index = _utf16_index(text)
        return [(index[a], index[b]) for a, b in spans] if index is not None else spans
    spans, pos = [], 0
    for piece in pieces:
        if not piece:
            spans.append((pos, pos))
            continue
        start = text.find(piece, pos)
        if start < 0:
            return None
        pos = start + len(piece)
        spans.append((start, pos))
    index = _utf16_index(text)
    if index is not None:
        spans = [(index[a], index[b]) for a, b in spans]
    return spans


def prefix_spans(text: str, ids: Sequence[int], decoder: TokenDecoder) -> list[tuple[int, int]] | None:
    """Token positions from decoding growing prefixes (exact where single ids decode to half a character)."""
    if decoder.decode(list(ids)) != text:
        return None
    spans, previous = [], 0
    for i in range(1, len(ids) + 1):
        prefix = decoder.decode(list(ids[:i]))
        if len(prefix) < previous or not text.startswith(prefix):
            return None
        spans.append((previous, len(prefix)))
        previous = len(prefix)
    index = _utf16_index(text)
    return [(index[a], index[b]) for a, b in spans] if index is not None else spans


class PieceSource:
    """Finds where each token of a text sits: from id-like words (image codecs), else from the model's codec.

    The codec comes from ``load_codec`` (a callable), asked at most once and only when a text is not its ids
    spelled out, so a report never loads a codec it does not need."""

    #: longest continuation for which the quadratic prefix fallback is tried
    PREFIX_LIMIT = 1024

    def __init__(self, load_codec: Callable[[], TokenDecoder | None] | None = None):
        self._load_codec = load_codec
        self._decoder: TokenDecoder | None = None
        self._pieces: dict[int, str] = {}

    @property
    def decoder(self) -> TokenDecoder | None:
        if self._load_codec is not None:
            load, self._load_codec = self._load_codec, None
            self._decoder = load()
        return self._decoder

    def _piece(self, decoder: TokenDecoder, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = decoder.decode([token])
        return piece

    def spans(self, text: Any, ids: Any) -> list[tuple[int, int]] | None:
        if not isinstance(text, str) or not isinstance(ids, list) or not ids:
            return None
        words = text.split()
        if len(words) == len(ids) and all(w == str(i) for w, i in zip(words, ids)):
            return align_pieces(text, words)
        decoder = self.decoder
        if decoder is None:
            return None
        pieces = self._pieces
        found = align_pieces(text, [pieces[i] if i in pieces else self._piece(decoder, int(i)) for i in ids])
        if found is None and len(ids) <= self.PREFIX_LIMIT:
            found = prefix_spans(text, ids, decoder)
        return found


def pack_spans(spans: Sequence[tuple[int, int]]) -> str:
    """Token positions as packed (gap, length) pairs, or ``"."`` + lengths when no token leaves a gap."""
    flat, pos = [], 0
    for start, end in spans:
        flat += [start - pos, end - start]
        pos = end
    if not any(flat[0::2]):  # the usual text codec: the pieces tile the text
        return "." + pack_ints(flat[1::2])
    return pack_ints(flat)


def unpack_spans(packed: str) -> list[tuple[int, int]]:
    """The inverse of :func:`pack_spans` (tests; the page does this in JS)."""
    values = unpack_ints(packed[1:]) if packed.startswith(".") else unpack_ints(packed)
    pairs = [(0, v) for v in values] if packed.startswith(".") else list(zip(values[0::2], values[1::2]))
    spans, pos = [], 0
    for gap, length in pairs:
        spans.append((pos + gap, pos + gap + length))
        pos += gap + length
    return spans


# --------------------------------------------------------------------------- the browser's data


@dataclass
class SampleData:
    """Everything the sample browser embeds; ``chunks`` are parsed by the page only when needed."""

    cells: list[str]
    #: dataset name → list of (prompt id, context label, chunk number, index in chunk)
    index: dict[str, list[list[Any]]]
    chunks: list[list[dict[str, Any]]]
    entropy_scale: float
    copy_ngram: int
    records: int
    #: cells whose recipe had training samples to look copies up in
    copy_cells: list[str]
    #: how many continuations have token positions (copies painted in the text, token n-grams)
    positioned: int

    def meta(self) -> dict[str, Any]:
        return {
            "cells": self.cells,
            "index": self.index,
            "entropyScale": self.entropy_scale,
            "copyNgram": self.copy_ngram,
            "records": self.records,
            "copyCells": self.copy_cells,
            "positioned": self.positioned,
            "alphabet": ALPHABET,
        }


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def _label(prompt_id: str, context: str) -> str:
    flat = " ".join(str(context).split())
    return flat if len(flat) <= LABEL_CHARS else flat[: LABEL_CHARS - 1] + "…"


def collect_samples(
    results_dir: Path,
    copy_ngram: int = DEFAULT_COPY_NGRAM,
    codec_for: Callable[[str], TokenDecoder | None] | None = None,
    chunk_contexts: int = CHUNK_CONTEXTS,
    order: Sequence[str] = (),
) -> SampleData:
    """Read ``cells/*/generations.jsonl`` into the browser's packed form, grouped by dataset and context.

    ``codec_for(model)`` (model: the part of a cell id before the first ``__``) gives the codec that places
    tokens in the text, or None; it is called only for a model whose texts are not their ids spelled out.
    Cells named in ``order`` (the leaderboard's row order: the benchmark's) come first, the others after.
    """
    results_dir = Path(results_dir)
    rank = {name: i for i, name in enumerate(order)}
    cell_dirs = sorted(
        (p for p in (results_dir / "cells").glob("*") if (p / "generations.jsonl").is_file()),
        key=lambda p: (rank.get(p.name, len(rank)), p.name),
    )
    cells = [p.name for p in cell_dirs]
    loaded = [(k, _read_records(p / "generations.jsonl")) for k, p in enumerate(cell_dirs)]
    scale = 0.0
    for _, records in loaded:
        for rec in records:
            steps = rec.get("step_entropy")
            if isinstance(steps, list) and steps:
                scale = max(scale, max((float(v) for v in steps if v is not None and v == v), default=0.0))
    grams: dict[str, TrainingGrams | None] = {}
    sources: dict[str, PieceSource] = {}
    contexts: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    count = positioned = 0
    copy_cells: list[str] = []
    for k, records in loaded:
        cell = cells[k]
        recipe_dir = cell.rsplit("__", 1)[0]
        if recipe_dir not in grams:
            grams[recipe_dir] = read_training_grams(results_dir / "recipes" / recipe_dir / "train_samples.jsonl", copy_ngram)
        train = grams[recipe_dir]
        if train is not None:
            copy_cells.append(cell)
        model = cell.split("__", 1)[0]
        if model not in sources:
            sources[model] = PieceSource((lambda m=model: codec_for(m)) if codec_for is not None else None)
        source = sources[model]
        for rec in records:
            dataset = str(rec.get("dataset", ""))
            prompt = str(rec.get("prompt_id", ""))
            slot = contexts.setdefault(dataset, {}).get((dataset, prompt))
            if slot is None:
                slot = {"p": prompt, "c": str(rec.get("context_text", "")), "r": str(rec.get("reference_text", "")), "s": []}
                ref_spans = source.spans(slot["r"], rec.get("reference_ids"))  # type: ignore[arg-type]
                if ref_spans is not None:
                    slot["ro"] = pack_spans(ref_spans)
                contexts[dataset][(dataset, prompt)] = slot
            text = str(rec.get("output_text", ""))
            ids = rec.get("output_ids") if isinstance(rec.get("output_ids"), list) else []
            sample: dict[str, Any] = {"k": k, "t": text, "n": len(ids)}
            if rec.get("sample_idx"):
                sample["d"] = int(rec["sample_idx"])
            steps = rec.get("step_entropy")
            if isinstance(steps, list) and steps:
                sample["e"] = pack_levels([float("nan") if v is None else float(v) for v in steps], scale)
            spans = source.spans(text, ids)
            if spans is not None:
                sample["o"] = pack_spans(spans)
                positioned += 1
            if train is not None:
                sample["x"] = train.copied_spans(ids)
            blocked = rec.get("blocked_steps")
            if isinstance(blocked, (int, list)) and not isinstance(blocked, bool):
                sample["b"] = blocked
            if rec.get("stopped_at_eos"):
                sample["z"] = 1
            slot["s"].append(sample)
            count += 1
    index: dict[str, list[list[Any]]] = {}
    chunks: list[list[dict[str, Any]]] = []
    for dataset, by_prompt in contexts.items():
        entries = index.setdefault(dataset, [])
        for position, slot in enumerate(by_prompt.values()):
            if position % chunk_contexts == 0:
                chunks.append([])
            entries.append([slot["p"], _label(slot["p"], slot["c"]), len(chunks) - 1, len(chunks[-1])])
            chunks[-1].append(slot)
    return SampleData(cells, index, chunks, round(scale, 6), copy_ngram, count, copy_cells, positioned)
