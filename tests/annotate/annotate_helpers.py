"""Shared helpers for the annotate tests: a small results folder, a server in a thread, plain HTTP calls."""

from __future__ import annotations

import http.client
import json
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from harness.annotate import AnnotationServer, Session

HIGH = "m__fit__greedy"
LOW = "m__base__greedy"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def _record(dataset: str, i: int, output: str) -> dict[str, Any]:
    return {
        "prompt_id": f"{dataset}/doc-{i}", "dataset": dataset, "context_text": f"Context {i} of {dataset}:",
        "output_text": output, "reference_text": f" the human text {i} of {dataset}.", "seed": 0,
        "context_ids": [1, 2], "output_ids": [3, 4],
    }  # fmt: skip


def make_results(root: Path) -> Path:
    """A results folder with two text cells sharing 8 prompts (4 wiki, 4 news); HIGH has one prompt more."""
    results = root / "results" / "bench"
    rows = {HIGH: [], LOW: []}
    for dataset in ("wiki", "news"):
        for i in range(4):
            rows[HIGH].append(_record(dataset, i, f" a varied continuation {i} about {dataset} <b>bold</b>."))
            rows[LOW].append(_record(dataset, i, f" the the the the {i} {dataset}"))
    rows[HIGH].append(_record("wiki", 9, " only in one cell"))
    for cell, records in rows.items():
        folder = results / "cells" / cell
        folder.mkdir(parents=True)
        (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return results


@contextmanager
def serving(session: Session) -> Iterator[AnnotationServer]:
    """The session's server on an ephemeral 127.0.0.1 port, in a thread, shut down afterwards."""
    server = AnnotationServer(session, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def call(server: AnnotationServer, method: str, path: str, body: Any = None, token: str | None = "ok",
         raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:  # fmt: skip
    """(status, parsed JSON or page text, headers); token "ok" means the server's own token, None none."""
    query = "" if token is None else "?token=" + (server.token if token == "ok" else token)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        conn.request(method, path + query, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        payload = response.read().decode("utf-8")
        headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    is_json = payload and headers.get("content-type", "").startswith("application/json")
    parsed = json.loads(payload) if is_json else payload
    return response.status, parsed, headers


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def expected_outcome(event: dict[str, Any], cell: str) -> str:
    """better / equal / worse for ``cell`` from a judgement line, derived from its side and who was left."""
    if event["side"] == "tie":
        return "equal"
    winner = event["left"] if event["side"] == "left" else ({event["a"], event["b"]} - {event["left"]}).pop()
    return "better" if winner == cell else "worse"
