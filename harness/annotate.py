"""``harness annotate``: blind pairwise human preference between two cells of a results folder.

The paper's Table 1 is a human judgement: annotators saw a context and two continuations and said which is
better, or that they are equally good. This module serves that protocol on ``127.0.0.1`` for one annotator:

* **items** are the prompts both cells share (the first draw of each), in an order seeded by ``seed``; the
  pseudo-cell ``reference`` stands for the original human continuation (the paper's comparison);
* **blind**: each item's two continuations are shown left (labelled A) and right (labelled B) in a seeded random
  order; the page never names a cell, and the side of a cell depends on the seed and the item only;
* **append-only log**: every judgement and every undo is one JSON line appended to
  ``RESULTS_DIR/annotations/<annotator>.jsonl`` (a whole line per ``write``, then ``fsync``; a lock serialises
  requests). Undo appends an ``undo`` event naming the judgement it removes instead of rewriting the file, so
  the file is also the audit trail and a crash can never lose an earlier judgement;
* **stateless server**: what is judged is read back from that file on every request, so a restarted server (or a
  second one on the same file) resumes at the next unjudged item.

The file format and the rules readers follow are in docs/annotation.md; the ``human-preference`` and
``human-agreement`` metrics read the same files. The page itself is :mod:`harness.annotate_page`.
"""

from __future__ import annotations

import hmac
import json
import os
import random
import re
import secrets
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from harness.annotation_format import FORMAT, REFERENCE, VERDICTS, effective_judgements, read_events, text_sha256
from harness.errors import InputError, did_you_mean
from harness.sampling import derive_seed
from harness.store import read_user_jsonl

#: safe file names: no path separators, no leading dot, no spaces, at most 64 characters
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_MAX_BODY = 64 * 1024


def check_annotator(name: str) -> str:
    """The annotator name, if it is safe as a file name (letters, digits, ``.``, ``_``, ``-``; 1-64 characters)."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".jsonl"):
        raise InputError(
            f"annotator {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- writing


def append_line(path: Path, event: dict[str, Any]) -> None:
    """Append one event as one line: a single ``write`` of the whole line, then ``fsync`` (the caller holds the lock).

    A torn last line (a crash inside an earlier write, never acknowledged) is cut off first, so it can never
    glue itself to this one."""
    data = (json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            content = os.pread(fd, size, 0)
            os.ftruncate(fd, content.rfind(b"\n") + 1)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:  # the new file's directory entry must survive a crash too
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- items


@dataclass(frozen=True)
class Item:
    """One comparison: a prompt both cells continued, with the two texts and which cell is shown left."""

    id: str
    dataset: str
    context: str
    text_a: str
    text_b: str
    left: str  # "a" or "b"

    def shown(self) -> tuple[str, str]:
        """(left text, right text)."""
        return (self.text_a, self.text_b) if self.left == "a" else (self.text_b, self.text_a)


def _cell_records(results_dir: Path, cell: str) -> dict[str, dict[str, Any]]:
    """The first draw of each prompt of a cell, by prompt id."""
    cells_dir = results_dir / "cells"
    path = cells_dir / cell / "generations.jsonl"
    if not path.is_file():
        known = sorted(p.name for p in cells_dir.iterdir() if (p / "generations.jsonl").is_file())
        raise InputError(f"{results_dir}: no cell {cell!r}" + did_you_mean(cell, known + [REFERENCE]))
    out: dict[str, dict[str, Any]] = {}
    for number, record in read_user_jsonl(path):
        if record.get("image_shape") is not None:
            raise InputError(f"{path}: cell {cell!r} holds image completions; annotate compares texts only")
        pid = record.get("prompt_id")
        if not isinstance(pid, str) or not isinstance(record.get("output_text"), str):
            raise InputError(f"{path}:{number}: a record needs a string prompt_id and output_text")
        if pid not in out or record.get("sample_idx", 0) < out[pid].get("sample_idx", 0):
            out[pid] = record
    return out


def left_cell(seed: int, item_id: str, a: str, b: str) -> str:
    """Which cell ("a" or "b") is shown left: a seeded coin per item, independent of the --a/--b order."""
    first = sorted((a, b))[derive_seed(seed, "annotate-side", item_id, sorted((a, b))) % 2]
    return "a" if first == a else "b"


def load_items(results_dir: Path, a: str, b: str, dataset: str | None = None, seed: int = 0) -> list[Item]:
    """The prompts both cells share (``reference``: the human continuation), in a seeded order."""
    if not (results_dir / "cells").is_dir():
        raise InputError(f"{results_dir}: not a results directory (no cells/)")
    if a == b:
        raise InputError(f"--a and --b are both {a!r}: compare two different cells")
    if REFERENCE in (a, b):
        real = b if a == REFERENCE else a
        records = _cell_records(results_dir, real)
        by_cell = {real: records, REFERENCE: {pid: {**r, "output_text": r.get("reference_text")} for pid, r in records.items()}}
    else:
        by_cell = {a: _cell_records(results_dir, a), b: _cell_records(results_dir, b)}
    shared = sorted(set(by_cell[a]) & set(by_cell[b]))
    if dataset is not None:
        datasets = sorted({str(by_cell[a][pid].get("dataset")) for pid in shared})
        shared = [pid for pid in shared if by_cell[a][pid].get("dataset") == dataset]
        if not shared:
            raise InputError(f"--dataset {dataset!r}: no shared prompt of that dataset" + did_you_mean(dataset, datasets))
    if not shared:
        raise InputError(f"{results_dir}: cells {a!r} and {b!r} share no prompt")
    items = []
    for pid in shared:
        ra, rb = by_cell[a][pid], by_cell[b][pid]
        if not isinstance(ra.get("output_text"), str) or not isinstance(rb.get("output_text"), str):
            raise InputError(f"{results_dir}: prompt {pid!r} has no reference_text to compare with")
        if ra.get("context_text") != rb.get("context_text"):
            raise InputError(f"{results_dir}: prompt {pid!r} has different contexts in {a!r} and {b!r}")
        items.append(Item(pid, str(ra.get("dataset", "")), str(ra.get("context_text") or ""), ra["output_text"],
                          rb["output_text"], left_cell(seed, pid, a, b)))  # fmt: skip
    random.Random(derive_seed(seed, "annotate-order")).shuffle(items)
    return items


# --------------------------------------------------------------------------- the session


class RequestError(Exception):
    """A request the session refuses: an HTTP status and a message; nothing was written."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Session:
    """One annotator judging one pair of cells: every answer is derived from the file, under the lock."""

    def __init__(self, results_dir: Path, a: str, b: str, annotator: str, dataset: str | None = None,
                 seed: int = 0, on_change: Callable[[str, dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.annotator = check_annotator(annotator)
        self.a, self.b, self.seed = a, b, seed
        self.items = load_items(Path(results_dir), a, b, dataset, seed)
        self.by_id = {item.id: item for item in self.items}
        self.path = Path(results_dir) / "annotations" / f"{annotator}.jsonl"
        self.on_change = on_change or (lambda kind, event: None)
        self._lock = threading.Lock()
        read_events(self.path, annotator)  # a damaged file stops here, before anything is served

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One check-then-append at a time: this server's threads (a thread lock) and any other process on the
        same file (an OS lock on the file itself, which the kernel drops if the holder dies). Reads need
        neither: a line is one write, and a torn last line is ignored."""
        with self._lock:
            created = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                import fcntl
            except ImportError:  # not POSIX: a lock file beside the data
                from filelock import FileLock

                with FileLock(str(self.path.with_name(f".{self.path.name}.lock"))):
                    yield
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if created:  # the new file's directory entry must survive a crash too
                    _fsync_dir(self.path.parent)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _mine(self, judgement: dict[str, Any]) -> bool:
        """A judgement of this pair, on an item of this session, made on the texts shown now."""
        item = self.by_id.get(judgement["item"])
        if item is None or {judgement["a"], judgement["b"]} != {self.a, self.b}:
            return False
        hashes = {judgement["a"]: judgement["sha256"]["a"], judgement["b"]: judgement["sha256"]["b"]}
        return hashes[self.a] == text_sha256(item.text_a) and hashes[self.b] == text_sha256(item.text_b)

    def _judged(self) -> list[dict[str, Any]]:
        return [j for j in effective_judgements(read_events(self.path, self.annotator)) if self._mine(j)]

    def _state(self, judged: list[dict[str, Any]]) -> dict[str, Any]:
        done = {j["item"] for j in judged}
        position = next((i for i, item in enumerate(self.items) if item.id not in done), None)
        state: dict[str, Any] = {"annotator": self.annotator, "total": len(self.items), "judged": len(done),
                                 "can_undo": bool(judged), "item": None}  # fmt: skip
        if position is not None:
            item = self.items[position]
            left, right = item.shown()
            state["item"] = {"id": item.id, "dataset": item.dataset, "context": item.context, "left": left,
                             "right": right, "position": position + 1}  # fmt: skip
        return state

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state(self._judged())

    def judge(self, item_id: Any, page_verdict: Any) -> dict[str, Any]:
        """Record the verdict for an item; ``page_verdict`` is the page's A (left), B (right) or tie."""
        if not isinstance(item_id, str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"item must be an item id (a string), got {item_id!r}")
        if item_id not in self.by_id:
            raise RequestError(HTTPStatus.NOT_FOUND, f"unknown item {item_id!r}")
        if page_verdict not in VERDICTS:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"verdict {page_verdict!r}: use 'a' (left), 'b' (right) or 'tie'")
        item = self.by_id[item_id]
        side = {"a": "left", "b": "right", "tie": "tie"}[page_verdict]
        right = "b" if item.left == "a" else "a"
        verdict = {"left": item.left, "right": right, "tie": "tie"}[side]
        with self._exclusive():
            judged = self._judged()
            if any(j["item"] == item_id for j in judged):
                raise RequestError(HTTPStatus.CONFLICT, f"item {item_id!r} is already judged (undo it first)")
            event = {
                "format": FORMAT, "event": "judgement", "id": uuid.uuid4().hex, "item": item_id,
                "dataset": item.dataset, "a": self.a, "b": self.b, "left": self.a if item.left == "a" else self.b,
                "verdict": verdict, "side": side, "annotator": self.annotator, "time": now_utc(), "seed": self.seed,
                "sha256": {"a": text_sha256(item.text_a), "b": text_sha256(item.text_b)},
            }  # fmt: skip
            append_line(self.path, event)
            state = self._state(judged + [event])
        self.on_change("judgement", event | {"progress": (state["judged"], state["total"])})
        return state

    def undo(self) -> dict[str, Any]:
        """Remove this annotator's last judgement of this pair (append an undo event)."""
        if not self.path.exists():
            raise RequestError(HTTPStatus.CONFLICT, "nothing to undo")
        with self._exclusive():
            judged = self._judged()
            if not judged:
                raise RequestError(HTTPStatus.CONFLICT, "nothing to undo")
            last = judged[-1]
            event = {"format": FORMAT, "event": "undo", "id": uuid.uuid4().hex, "undoes": last["id"],
                     "item": last["item"], "a": self.a, "b": self.b, "annotator": self.annotator, "time": now_utc()}  # fmt: skip
            append_line(self.path, event)
            state = self._state(judged[:-1])
        self.on_change("undo", event | {"progress": (state["judged"], state["total"])})
        return state


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    """Routes: ``GET /`` (the page), ``GET /api/state``, ``POST /api/judge``, ``POST /api/undo``; all need ?token=."""

    server: "AnnotationServer"
    protocol_version = "HTTP/1.1"
    _ROUTES = {"/": "GET", "/api/state": "GET", "/api/judge": "POST", "/api/undo": "POST"}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the terminal shows judgements, not request lines

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8", extra)

    def _error(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message, "status": int(status)}, extra)

    def _route(self, method: str) -> str | None:
        """The path when the token is right and the method fits; otherwise answers the error and gives None."""
        url = urlsplit(self.path)
        tokens = parse_qs(url.query).get("token", [])
        if len(tokens) != 1 or not hmac.compare_digest(tokens[0].encode(), self.server.token.encode()):
            self._discard_body()
            self._error(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL printed by harness annotate")
            return None
        allowed = self._ROUTES.get(url.path)
        if allowed is None:
            self._discard_body()
            self._error(HTTPStatus.NOT_FOUND, f"no such path {url.path!r}")
            return None
        if method != allowed:
            self._discard_body()
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{url.path} takes {allowed}, not {method}", {"Allow": allowed})
            return None
        return url.path

    def _discard_body(self) -> None:
        """Read an unwanted body so the connection stays usable (or close it when it is too large)."""
        length = self._length()
        if length is None or length > _MAX_BODY:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _length(self) -> int | None:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None

    def _body(self) -> dict[str, Any]:
        length = self._length()
        if length is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length > _MAX_BODY:
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {_MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return body

    def _handle(self, method: str) -> None:
        path = self._route(method)
        if path is None:
            return
        session = self.server.session
        try:
            if path == "/":
                from harness.annotate_page import render_page

                nonce = secrets.token_urlsafe(12)
                csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                       "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
                page = render_page(nonce).encode("utf-8")
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8", {"Content-Security-Policy": csp})
            elif path == "/api/state":
                self._json(HTTPStatus.OK, session.state())
            elif path == "/api/judge":
                body = self._body()
                self._json(HTTPStatus.OK, session.judge(body.get("item"), body.get("verdict")))
            else:
                self._body()
                self._json(HTTPStatus.OK, session.undo())
        except RequestError as exc:
            self._error(exc.status, str(exc))
        except InputError as exc:  # the file was damaged under a running server
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an unknown method) as JSON too."""
        self.close_connection = True
        try:
            self._error(code, message or HTTPStatus(code).phrase)
        except (OSError, ValueError):
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def __getattr__(self, name: str) -> Any:
        """Any other method (PUT, HEAD, an invented one) gets the token check, then 405, not http.server's 501."""
        if name.startswith("do_") and name[3:].isupper():
            return lambda: self._handle(name[3:])
        raise AttributeError(name)


class AnnotationServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 for one session, with a random token every request must carry."""

    daemon_threads = True

    def __init__(self, session: Session, port: int = 0, token: str | None = None) -> None:
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/?token={self.token}"


def serve(results_dir: Path, a: str, b: str, annotator: str, dataset: str | None, port: int, seed: int,
          echo: Callable[[str], None] = print) -> int:  # fmt: skip
    """Serve the page until interrupted; return the number of judgements in effect for this pair."""

    def report(kind: str, event: dict[str, Any]) -> None:  # no verdict: the annotator may be watching
        done, total = event["progress"]
        echo(f"{'judged' if kind == 'judgement' else 'undid'} {event['item']}  ({done} of {total} judged)")

    session = Session(results_dir, a, b, annotator, dataset, seed, on_change=report)
    try:
        server = AnnotationServer(session, port)
    except OSError as exc:
        raise InputError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})") from None
    state = session.state()
    echo(f"annotating {len(session.items)} items of {a} vs {b} as {annotator!r} "
         f"({state['judged']} judged; judgements go to {session.path})")  # fmt: skip
    echo(f"open {server.url}")
    echo("press Ctrl-C to stop; judgements are saved as they are made")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    state = session.state()
    echo(f"stopped: {state['judged']} of {state['total']} items judged, in {session.path}")
    return int(state["judged"])
