"""`harness score` runs every bundled metric on a generations JSONL made elsewhere (with --train for copying)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.api import MetricContext
from harness.cli import main
from harness_plugins.metrics import METRICS

pytest.importorskip("sacrebleu")

BY_NAME = {cls.name: cls for cls in METRICS}
WORDS = "river stone light garden window market winter silver forest letter music paper".split()


def _data(tmp_path: Path) -> tuple[Path, Path, list[dict], list[list[int]]]:
    rng = random.Random(0)
    train = [[rng.randrange(12) for _ in range(40)] for _ in range(6)]
    records = []
    for i in range(8):
        ids = [rng.randrange(14) for _ in range(rng.randint(10, 30))]
        if i % 3 == 0:
            ids[2:9] = train[i % 6][5:12]  # a copied run
        records.append({
            "prompt_id": f"p{i}", "output_ids": ids, "text": " ".join(WORDS[t % 12] for t in ids),
            "step_entropy": [rng.random() for _ in ids],
        })  # fmt: skip
    gen = tmp_path / "gen.jsonl"
    gen.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    tr = tmp_path / "train_samples.jsonl"
    tr.write_text("".join(json.dumps({"doc": "d", "start": 0, "token_ids": t}) + "\n" for t in train), "utf-8")
    for r in records:
        r["output_text"] = r["text"]
    return gen, tr, records, train


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


CASES = [
    ("ttr", []), ("ttr", ["unit=words"]), ("ttr-curve", ["window=8", "stride=4"]), ("seq-rep-n", ["n=2"]),
    ("rep-n", []), ("rep-n", ["unit=token-ids", "simctg_compat=true"]), ("diversity", []),
    ("distinct-n", []), ("ngram-entropy", ["n=2"]), ("self-bleu", ["tokenize=ids"]), ("entropy", []),
    ("dataset-bleu", []), ("dataset-overlap", []), ("dataset-overlap-max", []),
    ("dataset-overlap-share", ["threshold=5"]),
]  # fmt: skip


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}{'+' if p else ''}{','.join(p)}" for n, p in CASES])
def test_score_cli_runs_each_metric(tmp_path, capsys, name, params):
    gen, tr, records, train = _data(tmp_path)
    args = ["score", "--metric", name, "--bootstrap", "20", str(gen), "--train", str(tr)]
    for p in params:
        args += ["--param", p]
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    result = json.loads(out)
    metric = BY_NAME[name]({k: v for k, v in result["params"].items()})
    metric.context = MetricContext(train_sequences=train)
    if metric.level == "sample":
        values = metric.score_samples(records)
        expected = sum(values) / len(values)
    else:
        expected = metric.score_corpus(records)
    assert result["value"] == pytest.approx(expected, abs=1e-9)
    assert result["ci_low"] <= result["value"] + 1e-9 and result["value"] <= result["ci_high"] + 1e-9
    assert result["n"] == len(records) and result["level"] == metric.level
    assert result["higher_is_better"] == metric.higher_is_better and result["definition"] == metric.definition


@pytest.mark.parametrize("name", ["dataset-bleu", "dataset-overlap", "dataset-overlap-max", "dataset-overlap-share"])
def test_copying_metrics_without_train_fail_with_the_hint(tmp_path, capsys, name):
    gen, _, _, _ = _data(tmp_path)
    code, out, err = _run(capsys, "score", "--metric", name, "--bootstrap", "5", str(gen))
    assert code == 2 and not out
    assert f"{name} needs the recipe's training sequences" in err and "--train" in err


def test_word_unit_needs_output_text(tmp_path, capsys):
    gen = tmp_path / "ids_only.jsonl"
    gen.write_text(json.dumps({"output_ids": [1, 2, 3]}) + "\n", encoding="utf-8")
    code, _, err = _run(capsys, "score", "--metric", "rep-n", str(gen))
    assert code == 2 and '"output_text"' in err
    code, _, err = _run(capsys, "score", "--metric", "rep-n", "--param", "unit=token-ids", "--bootstrap", "3", str(gen))
    assert code == 0, err
