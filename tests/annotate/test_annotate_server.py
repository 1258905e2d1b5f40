"""The annotate server over real HTTP: token, refusals that change nothing, judgements, undo, restart, the file."""

from __future__ import annotations

import threading
import time

from annotate_helpers import HIGH, LOW, TIME, call, expected_outcome, lines, make_results, serving

from harness import annotate
from harness.annotate import REFERENCE, Session, text_sha256
from harness.store import read_jsonl
from harness_plugins.metrics.human_preference import HumanPreference


def _snapshot(path):
    return path.read_bytes() if path.exists() else None


def test_every_request_needs_the_token(tmp_path):
    session = Session(make_results(tmp_path), HIGH, LOW, "alice")
    with serving(session) as server:
        for method, path in (("GET", "/"), ("GET", "/api/state"), ("POST", "/api/judge"), ("POST", "/api/undo"),
                             ("GET", "/favicon.ico"), ("DELETE", "/")):  # fmt: skip
            for token in (None, "wrong", server.token[:-1]):
                status, body, headers = call(server, method, path, {"item": session.items[0].id, "verdict": "a"}, token=token)
                assert status == 403 and "token" in body["error"], (method, path, token)
                assert headers["content-type"].startswith("application/json")
        status, page, headers = call(server, "GET", "/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "connect-src 'self'" in headers["content-security-policy"] and "default-src 'none'" in headers["content-security-policy"]
        assert HIGH not in page and LOW not in page and "http://" not in page and "https://" not in page
    assert not session.path.exists()
    assert server.server_address[0] == "127.0.0.1"


def test_bad_requests_get_a_json_4xx_and_change_nothing(tmp_path):
    session = Session(make_results(tmp_path), HIGH, LOW, "alice")
    first = session.items[0].id
    with serving(session) as server:
        assert call(server, "POST", "/api/judge", {"item": first, "verdict": "tie"})[0] == 200
        before = _snapshot(session.path)
        cases = [
            ("POST", "/api/judge", {"item": "wiki/nope", "verdict": "a"}, None, 404),
            ("POST", "/api/judge", {"item": "wiki/doc-9", "verdict": "a"}, None, 404),  # in one cell only
            ("POST", "/api/judge", {"item": session.items[1].id, "verdict": "left"}, None, 400),
            ("POST", "/api/judge", {"item": session.items[1].id, "verdict": None}, None, 400),
            ("POST", "/api/judge", {"item": session.items[1].id, "verdict": HIGH}, None, 400),
            ("POST", "/api/judge", None, b"{not json", 400),
            ("POST", "/api/judge", None, b"[1, 2]", 400),
            ("POST", "/api/judge", None, b"\xff\xfe", 400),
            ("POST", "/api/judge", {"item": first, "verdict": "a"}, None, 409),  # already judged
            ("GET", "/api/judge", None, None, 405),
            ("POST", "/api/state", {}, None, 405),
            ("PUT", "/api/undo", {}, None, 405),
            ("POST", "/", {}, None, 405),
            ("OPTIONS", "/api/judge", None, None, 405),
            ("BREW", "/api/judge", {"item": session.items[1].id, "verdict": "a"}, None, 405),  # no such method
            ("POST", "/api/judge", {"item": ["wiki/doc-1"], "verdict": "a"}, None, 400),
            ("POST", "/api/judge", {"verdict": "a"}, None, 400),
            ("GET", "/api/secret", None, None, 404),
        ]
        for method, path, body, raw, code in cases:
            status, answer, headers = call(server, method, path, body, raw=raw)
            assert status == code, (method, path, body, raw, status, answer)
            assert isinstance(answer["error"], str) and answer["error"] and answer["status"] == code
            assert _snapshot(session.path) == before, (method, path, body)
            if code == 405:
                assert headers["allow"] in ("GET", "POST")
        status, answer, headers = call(server, "HEAD", "/api/judge")  # HEAD: the same refusal, no body
        assert status == 405 and answer == "" and headers["allow"] == "POST"
        assert call(server, "BREW", "/", token="wrong")[0] == 403
        assert call(server, "GET", "/api/state")[1]["judged"] == 1
    # undo with nothing to undo (another annotator): refused, no file made
    bob = Session(session.path.parents[1], HIGH, LOW, "bob")
    with serving(bob) as server:
        status, answer, _ = call(server, "POST", "/api/undo", {})
        assert status == 409 and "nothing to undo" in answer["error"]
    assert not bob.path.exists()


def test_five_judgements_undo_restart_resume_and_the_exact_file(tmp_path):
    results = make_results(tmp_path)
    session = Session(results, HIGH, REFERENCE, "alice", seed=7)
    items = session.items
    assert len(items) == 9 and all(item.text_b.startswith(" the human text") for item in items)
    page_verdicts = ["a", "b", "tie", "a", "b"]
    with serving(session) as server:
        for k, verdict in enumerate(page_verdicts):
            state = call(server, "GET", "/api/state")[1]
            assert state["judged"] == k and state["total"] == 9 and state["item"]["id"] == items[k].id
            assert (state["item"]["left"], state["item"]["right"]) == items[k].shown()
            assert HIGH not in str(state) and REFERENCE not in str(state)  # blind: no cell names on the wire
            status, state, _ = call(server, "POST", "/api/judge", {"item": items[k].id, "verdict": verdict})
            assert status == 200 and state["judged"] == k + 1
        status, state, _ = call(server, "POST", "/api/undo", {})
        assert status == 200 and state["judged"] == 4 and state["item"]["id"] == items[4].id
    # restart: a new session and server on the same folder resume at the next unjudged item
    again = Session(results, HIGH, REFERENCE, "alice", seed=7)
    with serving(again) as server:
        state = call(server, "GET", "/api/state")[1]
        assert state["judged"] == 4 and state["item"]["id"] == items[4].id and state["can_undo"]
        assert call(server, "POST", "/api/judge", {"item": items[4].id, "verdict": "tie"})[0] == 200
        assert call(server, "GET", "/api/state")[1]["item"]["id"] == items[5].id

    got = lines(session.path)
    assert [e["event"] for e in got] == ["judgement"] * 5 + ["undo", "judgement"]
    assert got[5]["undoes"] == got[4]["id"] and got[5]["item"] == items[4].id
    assert len({e["id"] for e in got}) == 7
    for event, item, verdict in zip(got[:5] + got[6:], items[:5] + [items[4]], page_verdicts[:4] + ["b", "tie"]):
        left = HIGH if item.left == "a" else REFERENCE
        side = {"a": "left", "b": "right", "tie": "tie"}[verdict]
        winner = {"left": left, "right": ({HIGH, REFERENCE} - {left}).pop()}.get(side)
        assert event == {
            "format": 1, "event": "judgement", "id": event["id"], "item": item.id, "dataset": item.dataset,
            "a": HIGH, "b": REFERENCE, "left": left, "side": side,
            "verdict": "tie" if winner is None else ("a" if winner == HIGH else "b"),
            "annotator": "alice", "time": event["time"], "seed": 7,
            "sha256": {"a": text_sha256(item.text_a), "b": text_sha256(item.text_b)},
        }  # fmt: skip
        assert TIME.match(event["time"])

    # the metric reproduces the file: one value per judged item, better-or-equal for the cell
    effective = got[:4] + got[6:]
    records = read_jsonl(results / "cells" / HIGH / "generations.jsonl")
    metric = HumanPreference({"annotations": str(results / "annotations")})
    by_item = {e["item"]: 100.0 * (expected_outcome(e, HIGH) != "worse") for e in effective}
    assert metric.score_samples(records) == [by_item[r["prompt_id"]] for r in records if r["prompt_id"] in by_item]
    metric = HumanPreference({"annotations": str(results / "annotations"), "count": "preference"})
    points = {"better": 100.0, "equal": 50.0, "worse": 0.0}
    assert sorted(metric.score_samples(records)) == sorted(points[expected_outcome(e, HIGH)] for e in effective)


def test_concurrent_judgements_of_one_item_write_one_line(tmp_path, monkeypatch):
    """Eight requests at once, to two servers on the same file (two sessions: only the OS file lock is shared)."""
    slow = annotate.append_line

    def append_slowly(path, event):  # widen the window between the check and the append
        time.sleep(0.05)
        slow(path, event)

    monkeypatch.setattr(annotate, "append_line", append_slowly)
    results = make_results(tmp_path)
    session, twin = Session(results, HIGH, LOW, "alice"), Session(results, HIGH, LOW, "alice")
    item = session.items[0].id
    with serving(session) as server, serving(twin) as other:
        statuses: list[int] = []
        barrier = threading.Barrier(8)

        def post(target) -> None:
            barrier.wait()
            statuses.append(call(target, "POST", "/api/judge", {"item": item, "verdict": "b"})[0])

        threads = [threading.Thread(target=post, args=(server if k % 2 else other,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert sorted(statuses) == [200] + [409] * 7
    assert [e["item"] for e in lines(session.path)] == [item]


def test_a_torn_last_line_is_ignored_then_cut_off(tmp_path):
    results = make_results(tmp_path)
    session = Session(results, HIGH, LOW, "alice")
    session.judge(session.items[0].id, "a")
    with session.path.open("ab") as handle:
        handle.write(b'{"format": 1, "event": "judg')  # a crash inside a write: no newline, never acknowledged
    again = Session(results, HIGH, LOW, "alice")
    assert again.state()["judged"] == 1
    again.judge(again.items[1].id, "tie")
    assert [e["item"] for e in lines(session.path)] == [session.items[0].id, session.items[1].id]


def test_pairs_and_annotators_are_kept_apart(tmp_path):
    results = make_results(tmp_path)
    alice = Session(results, HIGH, LOW, "alice")
    alice.judge(alice.items[0].id, "a")
    # the same pair given the other way round is the same comparison: judged items stay judged, sides stay put
    swapped = Session(results, LOW, HIGH, "alice")
    assert swapped.state()["judged"] == 1
    assert [i.shown() for i in sorted(swapped.items, key=lambda i: i.id)] == [i.shown() for i in sorted(alice.items, key=lambda i: i.id)]
    # another pair, or another annotator, starts from zero
    assert Session(results, HIGH, REFERENCE, "alice").state()["judged"] == 0
    assert Session(results, HIGH, LOW, "bob").state()["judged"] == 0
