"""The ``harness annotate`` file format (docs/annotation.md): one JSON event per line, judgements and undos.

Read by the annotation server (to resume) and by the human-judgement metrics (through ``harness.api``), so
both apply one set of rules: the same checks, the same handling of a torn last line, the same undo.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import InputError

#: version of the line format (docs/annotation.md); readers refuse lines of another version
FORMAT = 1
#: the pseudo-cell that stands for the original human continuation (``reference_text``)
REFERENCE = "reference"
#: a verdict in terms of cells; on the page, "a" and "b" are the labels A (left) and B (right)
VERDICTS = ("a", "b", "tie")
SIDES = ("left", "right", "tie")


def text_sha256(text: str) -> str:
    """The hash stored for a shown text: a judgement counts only for the exact texts it was made on."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_problem(event: Any, annotator: str | None = None) -> str | None:
    """Why a parsed line is not a well-formed event of docs/annotation.md (None when it is)."""
    if not isinstance(event, dict):
        return "not a JSON object"
    if event.get("format") != FORMAT:
        return f"format {event.get('format')!r} is not {FORMAT}"
    kind = event.get("event")
    common = ("id", "item", "a", "b", "annotator", "time")
    for key in common:
        if not isinstance(event.get(key), str) or not event[key]:
            return f"{key!r} must be a non-empty string"
    if annotator is not None and event["annotator"] != annotator:
        return f"annotator {event['annotator']!r} in the file of {annotator!r}"
    if event["a"] == event["b"]:
        return "cells a and b are the same"
    if kind == "undo":
        return None if isinstance(event.get("undoes"), str) else "'undoes' must be a judgement id"
    if kind != "judgement":
        return f"event {kind!r} is neither 'judgement' nor 'undo'"
    verdict, side, left = event.get("verdict"), event.get("side"), event.get("left")
    if verdict not in VERDICTS:
        return f"verdict {verdict!r} is not one of a, b, tie"
    if left not in (event["a"], event["b"]):
        return f"left {left!r} is neither cell a nor cell b"
    expected = "tie" if verdict == "tie" else ("left" if event[verdict] == left else "right")
    if side != expected:
        return f"side {side!r} contradicts verdict {verdict!r} with {left!r} on the left (expected {expected!r})"
    hashes = event.get("sha256")
    if not isinstance(hashes, dict) or not all(isinstance(hashes.get(k), str) for k in ("a", "b")):
        return "'sha256' must hold the hashes of texts a and b"
    if not isinstance(event.get("seed"), int) or not isinstance(event.get("dataset"), str):
        return "'seed' must be an int and 'dataset' a string"
    return None


def read_events(path: Path, annotator: str | None = None) -> list[dict[str, Any]]:
    """The events of one annotator file, checked. A last line without its newline is a torn append (the
    writer never acknowledged it) and is ignored; any other bad line is an InputError naming file and line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or a torn append
    events: list[dict[str, Any]] = []
    ids: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}:{number}: not a JSON line ({exc})") from None
        problem = event_problem(event, annotator)
        if problem is None and event["id"] in ids:
            problem = f"id {event['id']!r} appears twice"
        if problem is None and event["event"] == "undo" and event["undoes"] not in ids:
            problem = f"undo of {event['undoes']!r}, which no earlier line of this file is"
        if problem:
            raise InputError(f"{path}:{number}: {problem}")
        ids.add(event["id"])
        events.append(event)
    return events


def effective_judgements(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judgement events no later ``undo`` event removes, in file order."""
    undone = {e["undoes"] for e in events if e["event"] == "undo"}
    return [e for e in events if e["event"] == "judgement" and e["id"] not in undone]
