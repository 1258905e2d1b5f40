"""The human metrics' side of ``harness annotate`` files: the judgements in effect, matched to records.

The files are read with the SDK's reader of the format (``harness.api.read_annotation_events``, the one the
annotation server resumes from), so both apply the same checks and the same undo rule.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable

from harness.api import ANNOTATION_REFERENCE as REFERENCE
from harness.api import InputError, effective_judgements, read_annotation_events, text_sha256


def read_file(path: Path) -> list[dict[str, Any]]:
    """The judgements in effect in one annotator file (``<annotator>.jsonl``), in file order."""
    return effective_judgements(read_annotation_events(path, path.stem))


def read_folder(folder: Path) -> list[dict[str, Any]]:
    """The judgements in effect of every ``<annotator>.jsonl`` in ``folder`` (sorted by annotator)."""
    if not folder.is_dir():
        raise InputError(f"annotations folder {folder}: no such folder (made by `harness annotate`)")
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        out.extend(read_file(path))
    return out


def folder_fingerprint(folder: Path) -> str:
    """sha256 over the annotator files' names and bytes: what a cached score of these files depends on."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def record_outcomes(judgements: Iterable[dict[str, Any]], records: list[dict[str, Any]], against: str) -> list[dict[str, str]]:
    """Per record, {annotator: better | equal | worse} for the record's continuation against ``against``.

    A judgement counts for a record when its item is the record's prompt_id, ``against`` is one of its two cells,
    and the text it showed for the other cell is the record's output_text (for ``reference``, the text it
    showed as the reference must also be the record's reference_text): the evaluated cell is recognised by
    its text, so a judgement made on other texts (regenerated continuations, another draw) never counts. Where
    an annotator has several such judgements of one item, the last in the file counts.
    """
    by_item: dict[str, list[dict[str, Any]]] = {}
    for j in judgements:
        if against in (j["a"], j["b"]):
            by_item.setdefault(j["item"], []).append(j)
    out: list[dict[str, str]] = []
    for record in records:
        found: dict[str, str] = {}
        text = record.get("output_text")
        for j in by_item.get(str(record.get("prompt_id")), []):
            own = "b" if j["a"] == against else "a"
            other = "a" if own == "b" else "b"
            if not isinstance(text, str) or j["sha256"][own] != text_sha256(text):
                continue
            if against == REFERENCE and j["sha256"][other] != text_sha256(str(record.get("reference_text") or "")):
                continue
            found[j["annotator"]] = "equal" if j["verdict"] == "tie" else ("better" if j["verdict"] == own else "worse")
        out.append(found)
    return out


def cohen_kappa(x: list[str], y: list[str]) -> float:
    """Cohen's kappa of two raters' labels on the same items: (p_o − p_e) / (1 − p_e).

    p_o = share of items with equal labels; p_e = Σ_c p_x(c)·p_y(c) over the labels either used. When both
    raters used one and the same label throughout (p_e = 1, so p_o = 1), kappa is 1 (complete agreement;
    the formula's 0/0, which sklearn reports as NaN). Computed from integer counts, exactly."""
    if len(x) != len(y) or not x:
        raise ValueError("cohen_kappa needs two equally long, non-empty label lists")
    n = len(x)
    agree = sum(a == b for a, b in zip(x, y))
    chance = sum(x.count(c) * y.count(c) for c in set(x) | set(y))  # n² · p_e
    if chance == n * n:
        return 1.0
    return (n * agree - chance) / (n * n - chance)
