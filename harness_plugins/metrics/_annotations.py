"""Reading ``harness annotate`` files for the human metrics: the judgements in effect, matched to records.

A reader of the documented format (docs/annotation.md), written against the format rather than the core's
writer, exactly as a third-party plugin would be (plugins import only ``harness.api``); a test checks that it
and the writer's own reader agree on the same files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from harness.api import InputError

FORMAT = 1
REFERENCE = "reference"


def _problem(event: Any) -> str | None:
    if not isinstance(event, dict) or event.get("format") != FORMAT:
        return f"not an event of format {FORMAT}"
    for key in ("id", "item", "a", "b", "annotator", "time"):
        if not isinstance(event.get(key), str) or not event[key]:
            return f"{key!r} must be a non-empty string"
    if event.get("event") == "undo":
        return None if isinstance(event.get("undoes"), str) else "'undoes' must be a judgement id"
    if event.get("event") != "judgement":
        return f"event {event.get('event')!r} is neither 'judgement' nor 'undo'"
    verdict, left = event.get("verdict"), event.get("left")
    if verdict not in ("a", "b", "tie") or left not in (event["a"], event["b"]) or event["a"] == event["b"]:
        return "verdict must be a, b or tie and left one of the two different cells"
    side = "tie" if verdict == "tie" else ("left" if event[verdict] == left else "right")
    if event.get("side") != side:
        return f"side {event.get('side')!r} contradicts the verdict (expected {side!r})"
    hashes = event.get("sha256")
    if not isinstance(hashes, dict) or not all(isinstance(hashes.get(k), str) for k in ("a", "b")):
        return "'sha256' must hold the hashes of texts a and b"
    return None


def read_file(path: Path) -> list[dict[str, Any]]:
    """The judgements in effect in one annotator file, in file order: judgement lines that no undo line
    removes. A last line without its newline (a torn, unacknowledged append) is ignored."""
    lines = path.read_bytes().split(b"\n")[:-1]
    events: list[dict[str, Any]] = []
    ids: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}:{number}: not a JSON line ({exc})") from None
        problem = _problem(event)
        if problem is None and event["annotator"] != path.stem:
            problem = f"annotator {event['annotator']!r} in the file of {path.stem!r}"
        if problem is None and (event["id"] in ids or (event["event"] == "undo" and event["undoes"] not in ids)):
            problem = "duplicate id, or an undo of no earlier judgement"
        if problem:
            raise InputError(f"{path}:{number}: {problem}")
        ids.add(event["id"])
        events.append(event)
    undone = {e["undoes"] for e in events if e["event"] == "undo"}
    return [e for e in events if e["event"] == "judgement" and e["id"] not in undone]


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


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
            if not isinstance(text, str) or j["sha256"][own] != sha256(text):
                continue
            if against == REFERENCE and j["sha256"][other] != sha256(str(record.get("reference_text") or "")):
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
