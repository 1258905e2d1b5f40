"""`harness annotate` as a process (URL with token, Ctrl-C), its input errors, and the metrics through `harness score`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from annotate_helpers import HIGH, LOW, expected_outcome, lines, make_results

from harness.annotate import REFERENCE, Session
from harness.errors import ConfigError
from harness.testing import load_test_benchmark, run_cli, tiny_benchmark

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_serves_until_ctrl_c(tmp_path):
    results = make_results(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "annotate", str(results), "--a", HIGH, "--b", REFERENCE,
         "--annotator", "carol", "--dataset", "news", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("open "):
                break
        url = seen[-1].split()[1]
        assert re.match(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{20,}\Z", url), seen
        assert "annotating 4 items" in seen[0] and "carol.jsonl" in seen[0]
        base, token = url.split("/?token=")
        with urllib.request.urlopen(f"{base}/api/state?token={token}", timeout=10) as response:
            state = json.load(response)
        assert state["total"] == 4 and state["item"]["dataset"] == "news"
        request = urllib.request.Request(f"{base}/api/judge?token={token}", method="POST",
                                         data=json.dumps({"item": state["item"]["id"], "verdict": "tie"}).encode())  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["judged"] == 1
        try:
            urllib.request.urlopen(f"{base}/api/state?token=nope", timeout=10)
            raise AssertionError("a wrong token was served")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=20)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    assert "(1 of 4 judged)" in rest and "stopped: 1 of 4 items judged" in rest
    assert [e["verdict"] for e in lines(results / "annotations" / "carol.jsonl")] == ["tie"]


def test_input_errors_exit_2_before_serving(tmp_path):
    results = make_results(tmp_path)
    code, out = run_cli(["annotate", str(results), "--a", HIGH, "--b", "m__base__gredy", "--annotator", "x"])
    assert code == 2 and 'did you mean "m__base__greedy"' in out
    code, out = run_cli(["annotate", str(results), "--a", HIGH, "--b", LOW, "--annotator", "../etc"])
    assert code == 2 and "annotator '../etc'" in out
    code, out = run_cli(["annotate", str(tmp_path), "--a", HIGH, "--b", LOW, "--annotator", "x"])
    assert code == 2 and "not a results directory" in out
    assert not (results / "annotations").exists()


def test_the_metrics_through_harness_score(tmp_path):
    results = make_results(tmp_path)
    folder = results / "annotations"
    verdicts = {"alice": ["a", "b", "tie", "a", "a"], "bob": ["b", "b", "tie", "a", "b", "tie"]}
    for name, page in verdicts.items():
        session = Session(results, HIGH, LOW, name, seed=1)
        for item, verdict in zip(session.items, page):
            session.judge(item.id, verdict)
    generations = results / "cells" / HIGH / "generations.jsonl"
    code, out = run_cli(["score", str(generations), "--metric", "human-preference",
                         "--param", f"annotations={folder}", "--param", f"against={LOW}"])  # fmt: skip
    assert code == 0, out
    got = json.loads(out)
    per_item: dict[str, list[float]] = {}
    for name in verdicts:
        for event in lines(folder / f"{name}.jsonl"):
            per_item.setdefault(event["item"], []).append(float(expected_outcome(event, HIGH) != "worse"))
    values = [100 * sum(v) / len(v) for v in per_item.values()]
    assert got["n"] == 6 and got["interval"] == "normal"
    assert abs(got["value"] - sum(values) / len(values)) < 1e-9
    assert got["ci_low"] <= got["value"] <= got["ci_high"] and got["definition"].startswith("Reads the judgements")
    # the other cell's view of the same judgements: with equal = ½ the two shares add up to 100 on every item
    shares = []
    for cell, against in ((HIGH, LOW), (LOW, HIGH)):
        code, out = run_cli(["score", str(results / "cells" / cell / "generations.jsonl"), "--metric", "human-preference",
                             "--param", f"annotations={folder}", "--param", f"against={against}",
                             "--param", "count=preference"])  # fmt: skip
        assert code == 0, out
        shares.append(json.loads(out)["value"])
    assert abs(sum(shares) - 100) < 1e-9
    code, out = run_cli(["score", str(generations), "--metric", "human-agreement",
                         "--param", f"annotations={folder}", "--param", f"against={LOW}"])  # fmt: skip
    assert code == 0, out
    agreement = json.loads(out)
    assert agreement["interval"] == "bootstrap" and "5 items judged by two" in agreement["warning"]
    assert agreement["ci_low"] <= agreement["value"] <= agreement["ci_high"]
    # nothing matches: a clear input error, not a 0
    code, out = run_cli(["score", str(generations), "--metric", "human-preference", "--param", f"annotations={folder}"])
    assert code == 2 and "no judgement" in out and "--b reference" in out
    # a file inside RESULTS/cells/CELL/: the results folder's annotations/ is the default
    code, out = run_cli(["score", str(generations), "--metric", "human-preference", "--param", f"against={LOW}"])
    assert code == 0 and json.loads(out)["value"] == got["value"], out
    # a file elsewhere: no results folder to default to
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(generations.read_bytes())
    code, out = run_cli(["score", str(elsewhere), "--metric", "human-preference", "--param", f"against={LOW}"])
    assert code == 2 and "set `annotations`" in out


def test_validate_checks_the_metric_params(tmp_path):
    bench = tiny_benchmark(tmp_path, metrics={"kappa": {"plugin": "human-agreement", "annotators": ["alice"]},
                                              "human": {"plugin": "human-preference", "count": "share"}})  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_test_benchmark(bench, tmp_path)
    text = str(caught.value)
    assert "kappa" in text and "annotators" in text and "at least 2" in text
    assert "human" in text and "count" in text and "'share' is not allowed" in text
