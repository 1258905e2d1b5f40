"""Items, names and the file format; both readers (the server's and the metrics') agree; kappa by hand."""

from __future__ import annotations

import json

import pytest
from annotate_helpers import HIGH, LOW, make_results

from harness.annotate import REFERENCE, Session, check_annotator, effective_judgements, load_items, read_events
from harness.errors import InputError
from harness_plugins.metrics._annotations import cohen_kappa, read_file, record_outcomes
from harness_plugins.metrics.human_preference import HumanAgreement


@pytest.mark.parametrize("name", ["alice", "Bob_2", "r.smith", "a-b", "x" * 64, "7"])
def test_safe_annotator_names(name):
    assert check_annotator(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "../x", "a/b", "a b", "x" * 65, "é", "alice.jsonl", "-x", "a\nb"])
def test_unsafe_annotator_names_are_refused(name, tmp_path):
    with pytest.raises(InputError, match="annotator"):
        check_annotator(name)
    with pytest.raises(InputError, match="annotator"):
        Session(make_results(tmp_path), HIGH, LOW, name)


def test_items_are_the_shared_prompts_in_a_seeded_order(tmp_path):
    results = make_results(tmp_path)
    items = load_items(results, HIGH, LOW, seed=0)
    assert sorted(i.id for i in items) == sorted(f"{d}/doc-{k}" for d in ("wiki", "news") for k in range(4))
    assert [i.id for i in load_items(results, HIGH, LOW, seed=0)] == [i.id for i in items]  # reproducible
    orders = {tuple(i.id for i in load_items(results, HIGH, LOW, seed=s)) for s in range(6)}
    assert len(orders) > 1
    lefts = [i.left for i in items]
    assert set(lefts) == {"a", "b"}  # both sides occur: the coin is per item
    swapped = {i.id: i for i in load_items(results, LOW, HIGH, seed=0)}
    for item in items:  # the same cell is on the left whichever is --a
        assert swapped[item.id].shown() == item.shown()
    wiki = load_items(results, HIGH, LOW, dataset="wiki")
    assert {i.dataset for i in wiki} == {"wiki"} and len(wiki) == 4
    with pytest.raises(InputError, match='did you mean "wiki"'):
        load_items(results, HIGH, LOW, dataset="wikki")
    reference = load_items(results, REFERENCE, LOW)
    assert all(i.text_a.startswith(" the human text") for i in reference) and len(reference) == 8


def test_bad_cells_are_input_errors(tmp_path):
    results = make_results(tmp_path)
    with pytest.raises(InputError, match='did you mean "m__fit__greedy"'):
        load_items(results, "m__fit__greedyy", LOW)
    with pytest.raises(InputError, match="both"):
        load_items(results, HIGH, HIGH)
    with pytest.raises(InputError, match="not a results directory"):
        load_items(tmp_path, HIGH, LOW)


def _alice_file(tmp_path):
    results = make_results(tmp_path)
    session = Session(results, HIGH, LOW, "alice")
    for item, verdict in zip(session.items, ["a", "b", "tie", "a"]):
        session.judge(item.id, verdict)
    session.undo()
    session.undo()
    session.judge(session.items[2].id, "b")
    return results, session


def test_both_readers_agree_and_respect_undo(tmp_path):
    results, session = _alice_file(tmp_path)
    events = read_events(session.path, "alice")
    assert [e["event"] for e in events] == ["judgement"] * 4 + ["undo", "undo", "judgement"]
    core = effective_judgements(events)
    assert [e["item"] for e in core] == [i.id for i in session.items[:3]]
    assert read_file(session.path) == core


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: e | {"verdict": "left"}, "verdict"),
        (lambda e: e | {"side": "right" if e["side"] == "left" else "left"}, "side"),
        (lambda e: e | {"format": 2}, "format"),
        (lambda e: e | {"annotator": "bob"}, "annotator"),
        (lambda e: {k: v for k, v in e.items() if k != "sha256"}, "sha256"),
        (lambda e: e | {"event": "redo"}, "event"),
    ],
)
def test_malformed_lines_are_refused_by_both_readers(tmp_path, mutate, message):
    results, session = _alice_file(tmp_path)
    rows = [json.loads(line) for line in session.path.read_text(encoding="utf-8").splitlines()]
    rows[1] = mutate(rows[1])
    session.path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputError, match=rf"alice.jsonl:2: .*{message}"):
        read_events(session.path, "alice")
    with pytest.raises(InputError, match=r"alice.jsonl:2: "):
        read_file(session.path)
    with pytest.raises(InputError, match=r"alice.jsonl:2: "):
        Session(results, HIGH, LOW, "alice")  # a damaged file stops the server before it serves


def test_an_undo_of_nothing_and_a_line_that_is_not_json_are_refused(tmp_path):
    results, session = _alice_file(tmp_path)
    text = session.path.read_text(encoding="utf-8")
    session.path.write_text(text + "not json\n", encoding="utf-8")
    for read in (lambda p: read_events(p, "alice"), read_file):
        with pytest.raises(InputError, match=r"alice.jsonl:8: not a JSON line"):
            read(session.path)
    undo = json.loads(text.splitlines()[4]) | {"id": "x" * 32, "undoes": "missing"}
    session.path.write_text(text + json.dumps(undo) + "\n", encoding="utf-8")
    for read in (lambda p: read_events(p, "alice"), read_file):
        with pytest.raises(InputError, match=r"alice.jsonl:8: "):
            read(session.path)


# --------------------------------------------------------------------------- Cohen's kappa

#: 10 items, labels of annotators u and v (B better, E equal, W worse). Agreements: items 1, 2, 3, 5, 7, 8, 10 = 7.
#: Marginals u: B 5, E 2, W 3; v: B 5, E 2, W 3. p_o = 7/10, p_e = (5·5 + 2·2 + 3·3)/100 = 38/100,
#: kappa = (0.70 − 0.38) / (1 − 0.38) = 0.32 / 0.62 = 16/31 = 0.516129…
U = ["better", "better", "better", "better", "equal", "equal", "worse", "worse", "worse", "better"]
V = ["better", "better", "better", "equal", "equal", "worse", "worse", "worse", "better", "better"]


def test_kappa_on_a_table_computed_by_hand():
    assert cohen_kappa(U, V) == pytest.approx(16 / 31, abs=1e-15)
    assert cohen_kappa(U, U) == 1.0
    assert cohen_kappa(["equal"] * 4, ["equal"] * 4) == 1.0  # one same label throughout: complete agreement
    # 2×2 by hand: agree 2 of 4, marginals u (2, 2), v (2, 2): p_e = 1/2, kappa 0
    assert cohen_kappa(["better", "better", "worse", "worse"], ["better", "worse", "better", "worse"]) == 0.0
    # total disagreement with balanced marginals: p_o 0, p_e 1/2, kappa −1
    assert cohen_kappa(["better", "worse"], ["worse", "better"]) == -1.0


def test_kappa_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    assert cohen_kappa(U, V) == pytest.approx(metrics.cohen_kappa_score(U, V), abs=1e-12)
    x = ["better", "equal", "worse", "equal", "better", "worse", "worse", "equal", "better"]
    y = ["equal", "equal", "worse", "better", "better", "worse", "equal", "equal", "worse"]
    assert cohen_kappa(x, y) == pytest.approx(metrics.cohen_kappa_score(x, y), abs=1e-12)


def _judge_all(results, annotator, labels):
    """Make ``annotator`` judge HIGH vs LOW so that HIGH's outcome per item (in item-id order) is ``labels``."""
    session = Session(results, HIGH, LOW, annotator)
    for item, label in zip(sorted(session.items, key=lambda i: i.id), labels):
        high_side = "a" if item.left == "a" else "b"  # the page's label of HIGH's side
        page = {"better": high_side, "worse": "b" if high_side == "a" else "a", "equal": "tie"}[label]
        session.judge(item.id, page)
    return session


def test_human_agreement_is_the_hand_kappa_for_two_annotators_and_lights_kappa_for_three(tmp_path):
    results = make_results(tmp_path)
    u, v = U[:8], V[:8]  # 8 shared items; by hand: agree 6 (items 1, 2, 3, 5, 7, 8); u: B 4, E 2, W 2; v: B 3, E 2, W 3
    _judge_all(results, "u", u)
    _judge_all(results, "v", v)
    by_hand = (8 * 6 - (4 * 3 + 2 * 2 + 2 * 3)) / (64 - (4 * 3 + 2 * 2 + 2 * 3))  # (48 − 22) / (64 − 22) = 26/42
    records = [json.loads(line) for line in (results / "cells" / HIGH / "generations.jsonl").read_text().splitlines()]
    folder = str(results / "annotations")
    metric = HumanAgreement({"annotations": folder, "against": LOW})
    assert metric.score_corpus(records) == pytest.approx(26 / 42) == pytest.approx(by_hand)
    interval = metric.own_interval(records)
    assert interval["ci_low"] <= 26 / 42 <= interval["ci_high"] and interval["method"] == "bootstrap"
    assert "8 items" in interval["warning"] and "of 9 continuations" in interval["warning"]
    assert metric.own_interval(records) == interval  # seeded
    # from LOW's side the labels swap better ↔ worse: kappa is the same
    low = [json.loads(line) for line in (results / "cells" / LOW / "generations.jsonl").read_text().splitlines()]
    assert HumanAgreement({"annotations": folder, "against": HIGH}).score_corpus(low) == pytest.approx(26 / 42)
    # a third annotator: the mean of the three pairwise kappas
    w = ["better"] * 4 + ["worse"] * 4
    _judge_all(results, "w", w)
    three = HumanAgreement({"annotations": folder, "against": LOW}).score_corpus(records)
    assert three == pytest.approx((cohen_kappa(u, v) + cohen_kappa(u, w) + cohen_kappa(v, w)) / 3)
    only = HumanAgreement({"annotations": folder, "against": LOW, "annotators": ["u", "w"]}).score_corpus(records)
    assert only == pytest.approx(cohen_kappa(u, w))
    outcomes = record_outcomes(read_file(results / "annotations" / "u.jsonl"), records, LOW)
    label_of = dict(zip(sorted(r["prompt_id"] for r in records[:8]), u))  # _judge_all labels items in id order
    assert [o.get("u") for o in outcomes] == [label_of.get(r["prompt_id"]) for r in records]


def test_one_annotator_is_no_agreement(tmp_path):
    results = make_results(tmp_path)
    _judge_all(results, "u", U[:8])
    records = [json.loads(line) for line in (results / "cells" / HIGH / "generations.jsonl").read_text().splitlines()]
    with pytest.raises(ValueError, match="two annotators"):
        HumanAgreement({"annotations": str(results / "annotations"), "against": LOW}).score_corpus(records)
