"""One real run of the tiny benchmark through Runner, checked against the results-directory contract."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import TINY_PLUGINS, make_corpus, tiny_benchmark, write_yaml
from harness.api import SAMPLE_FIELDS
from harness.config import load_benchmark
from harness.errors import RunError
from harness.leaderboard import build_table, format_cell, load_results, render_csv, render_markdown
from harness.plugin_manager import PluginOptions, load_plugins
from harness.runner import Runner, RunOptions
from harness.sampling import derive_seed

SCORE_HEADER = ["model", "recipe", "decoder", "dataset", "metric", "value", "ci_low", "ci_high", "n", "interval", "warning"]
CELLS = ["tiny__base__greedy", "tiny__base__top-p", "tiny__fit__greedy", "tiny__fit__top-p"]
DATASETS = ["train-set", "other-set"]
METRICS = ["ttr", "self-bleu", "entropy"]


@pytest.fixture(scope="module")
def registry():
    return load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, registry) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("e2e")
    data = tiny_benchmark(root)
    bench = load_benchmark(write_yaml(root / "tiny.yaml", data), registry)
    summary = Runner(bench, RunOptions(results_root=root / "results", cache_root=root / "cache")).run()
    return SimpleNamespace(root=root, data=data, bench=bench, summary=summary, results=root / "results" / "tiny")


def read_scores(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def documents(run: SimpleNamespace, dataset: str) -> dict[str, str]:
    return {d.id: d.text for d in run.bench.datasets[dataset].instantiate().documents()}


def byte_ids(text: str) -> list[int]:
    return [b + 2 for b in text.encode("utf-8")]


# --------------------------------------------------------------------------- layout


def test_results_layout(run):
    results = run.results
    assert run.summary.results_dir == results
    for name in ("manifest.json", "scores.csv", "leaderboard.md"):
        assert (results / name).is_file(), name
    assert sorted(p.name for p in (results / "cells").iterdir()) == sorted(CELLS)
    for cell in CELLS:
        assert sorted(p.name for p in (results / "cells" / cell).iterdir()) == ["generations.jsonl"]
    # only the training recipe has a recipes/ folder
    assert sorted(p.name for p in (results / "recipes").iterdir()) == ["tiny__fit"]
    fit_dir = results / "recipes" / "tiny__fit"
    assert sorted(p.name for p in fit_dir.iterdir()) == [
        "curves.csv", "curves.png", "heldout_samples.jsonl", "train_samples.jsonl",
    ]  # fmt: skip
    assert (fit_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in results.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_heldout_sequences_come_from_documents_used_nowhere_else(run):
    fit_dir = run.results / "recipes" / "tiny__fit"
    read = lambda name: [json.loads(line) for line in (fit_dir / name).read_text(encoding="utf-8").splitlines()]
    train, heldout = read("train_samples.jsonl"), read("heldout_samples.jsonl")
    assert heldout and all(len(s["token_ids"]) == 24 for s in heldout)
    prompts = {json.loads(line)["prompt_id"]
               for cell in (run.results / "cells").iterdir()
               for line in (cell / "generations.jsonl").read_text(encoding="utf-8").splitlines()}  # fmt: skip
    eval_docs = {p.split("/", 1)[1] for p in prompts if p.startswith("train-set/")}
    assert eval_docs, "the training dataset is also an eval dataset here"
    held_docs = {s["doc_id"] for s in heldout}
    assert not held_docs & {s["doc_id"] for s in train}
    assert not held_docs & eval_docs
    with (fit_dir / "curves.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["step"] == "0" and rows[0]["heldout_loss"]
    assert all(row["heldout_loss"] and row["greedy_ttr"] for row in rows)


def test_first_run_computes_every_stage(run):
    computed = run.summary.computed
    assert computed["fit"] == 1
    assert computed["train"] == 1
    assert computed["contexts"] == 2
    # 4 cells x 2 datasets x ceil(6 / 4) batches
    assert computed["generate"] == 16
    assert computed["score"] == 4 * 2 * 3
    assert "generate" not in run.summary.reused and "score" not in run.summary.reused


# --------------------------------------------------------------------------- manifest


def test_manifest_contract(run):
    manifest = json.loads((run.results / "manifest.json").read_text(encoding="utf-8"))
    for key in ("config", "metrics", "plugins", "packages", "git", "hardware", "data", "stage_keys", "seed", "timings_seconds"):
        assert key in manifest, key
    assert manifest["seed"] == 0
    assert manifest["benchmark"] == "tiny"
    assert manifest["config"] == json.loads(json.dumps(run.bench.resolved()))
    assert manifest["config"]["recipes"]["fit"]["train"] == {"dataset": "train-set", "samples": 8, "tokens": 24, "heldout": 16}
    recorded = manifest["config"]["recipes"]["fit"]
    for name in ("optimizer", "weight_decay", "dropout", "precision", "micro_batch_size", "checkpoint_every", "curve_every"):
        assert name in recorded, f"the manifest records the resolved recipe param {name}"
    assert manifest["config"]["eval"]["contexts"] == 6

    assert list(manifest["metrics"]) == METRICS
    assert manifest["metrics"]["ttr"]["higher_is_better"] is True
    assert manifest["metrics"]["self-bleu"]["higher_is_better"] is False
    assert manifest["metrics"]["ttr"]["params"] == {"window": 16, "unit": "token-ids"}
    assert all(info["definition"] for info in manifest["metrics"].values())

    names = {(p["kind"], p["name"]) for p in manifest["plugins"]}
    assert names == {
        ("model_loader", "tiny-llama"), ("dataset", "local-text"), ("recipe", "none"), ("recipe", "hyperfit"),
        ("decoder", "greedy"), ("decoder", "top-p"), ("metric", "ttr"), ("metric", "self-bleu"), ("metric", "entropy"),
    }  # fmt: skip
    tiny = next(p for p in manifest["plugins"] if p["name"] == "tiny-llama")
    assert tiny["plugin"] == f"file:{TINY_PLUGINS}"

    import torch

    assert manifest["packages"]["torch"] == torch.__version__
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert manifest["hardware"]["cpu_count"] >= 1 and manifest["hardware"]["device"] == "cpu"

    for dataset in DATASETS:
        digest = hashlib.sha256()
        docs = documents(run, dataset)
        for doc_id, text in docs.items():
            digest.update(doc_id.encode() + b"\0" + text.encode() + b"\0")
        assert manifest["data"][dataset] == {"sha256": digest.hexdigest(), "documents": len(docs)}
    assert manifest["data"]["train-set"]["sha256"] != manifest["data"]["other-set"]["sha256"]

    keys = manifest["stage_keys"]
    assert set(keys["contexts"]) == {f"tiny/{d}" for d in DATASETS}
    assert set(keys["train"]) == {"tiny/fit"}
    assert set(keys["fit"]) == {"tiny/base", "tiny/fit"}
    assert set(keys["generate"]) == {f"{c}/{d}" for c in CELLS for d in DATASETS}
    assert set(keys["score"]) == {f"{c}/{d}/{m}" for c in CELLS for d in DATASETS for m in METRICS}
    all_keys = [k for stage in keys.values() for k in stage.values()]
    assert len(set(all_keys)) == len(all_keys), "every stage instance has its own key"
    cache = run.root / "cache"
    assert (cache / "fits" / keys["fit"]["tiny/fit"]).is_dir()
    assert (cache / "stages" / "fit" / f"{keys['fit']['tiny/fit']}.json").is_file()
    assert not (cache / "fits" / keys["fit"]["tiny/base"]).exists(), "the identity recipe stores no weights"

    timings = manifest["timings_seconds"]
    for stage in ("total", "fit", "generate", "score"):
        assert timings[stage] >= 0, stage
    assert manifest["stages"]["computed"] == run.summary.computed


# --------------------------------------------------------------------------- scores.csv


def test_scores_csv_contract(run):
    text = (run.results / "scores.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(SCORE_HEADER)
    rows = read_scores(run.results / "scores.csv")
    assert len(rows) == len(CELLS) * len(DATASETS) * len(METRICS)
    seen = {(r["model"], r["recipe"], r["decoder"], r["dataset"], r["metric"]) for r in rows}
    expected = {(*c.split("__"), d, m) for c in CELLS for d in DATASETS for m in METRICS}
    assert seen == expected
    for row in rows:
        assert int(row["n"]) == 6
        low, value, high = float(row["ci_low"]), float(row["value"]), float(row["ci_high"])
        assert math.isfinite(value) and low <= high
    # the csv holds the runner's numbers exactly (repr round trip)
    by_key = {(r["model"], r["recipe"], r["decoder"], r["dataset"], r["metric"]): r for r in rows}
    for score in run.summary.scores:
        row = by_key[(score.model, score.recipe, score.decoder, score.dataset, score.metric)]
        assert float(row["value"]) == score.value
        assert float(row["ci_low"]) == score.ci_low and float(row["ci_high"]) == score.ci_high
        assert int(row["n"]) == score.n


# --------------------------------------------------------------------------- generations


def test_generations_contract(run):
    new_tokens = run.data["eval"]["new_tokens"]
    context_tokens = run.data["eval"]["context_tokens"]
    docs = {d: documents(run, d) for d in DATASETS}
    prompts_by_cell = {}
    outputs_by_cell = {}
    for cell in CELLS:
        records = read_jsonl(run.results / "cells" / cell / "generations.jsonl")
        assert len(records) == 6 * len(DATASETS)
        assert [r["dataset"] for r in records] == ["train-set"] * 6 + ["other-set"] * 6
        for r in records:
            assert set(r) == set(SAMPLE_FIELDS), set(r) ^ set(SAMPLE_FIELDS)
            dataset, doc_id = r["prompt_id"].split("/", 1)
            assert dataset == r["dataset"]
            text = docs[dataset][doc_id]
            ids = byte_ids(text)
            assert r["context_ids"] == ids[:context_tokens]
            assert r["context_text"] == text.encode()[:context_tokens].decode()
            assert r["reference_text"] == text.encode()[context_tokens : context_tokens + new_tokens].decode()
            assert 0 < len(r["output_ids"]) <= new_tokens
            assert len(r["step_entropy"]) == len(r["output_ids"]) == len(r["step_top1"])
            assert 1 not in r["output_ids"], "EOS is never part of an output"
            assert r["output_text"] == bytes(i - 2 for i in r["output_ids"] if i >= 2).decode("utf-8", errors="replace")
            assert r["seed"] == derive_seed(0, r["prompt_id"], 0)
            assert all(0.0 <= e <= math.log(258) + 1e-4 for e in r["step_entropy"])
            assert all(0.0 < p <= 1.0 for p in r["step_top1"])
        prompts_by_cell[cell] = [r["prompt_id"] for r in records]
        outputs_by_cell[cell] = [r["output_ids"] for r in records]
    # every cell continues the same contexts in the same order
    assert len({tuple(p) for p in prompts_by_cell.values()}) == 1
    assert len(set(prompts_by_cell[CELLS[0]])) == 12
    # the fitted model is really used: its greedy continuations differ from the base model's
    assert outputs_by_cell["tiny__fit__greedy"] != outputs_by_cell["tiny__base__greedy"]
    assert outputs_by_cell["tiny__base__top-p"] != outputs_by_cell["tiny__base__greedy"]


# --------------------------------------------------------------------------- training data and curves


def test_train_samples_and_disjointness(run):
    samples = read_jsonl(run.results / "recipes" / "tiny__fit" / "train_samples.jsonl")
    assert len(samples) == 8
    docs = documents(run, "train-set")
    for s in samples:
        assert {"doc_id", "token_ids"} <= set(s)
        assert len(s["token_ids"]) == 24
        assert s["token_ids"] == byte_ids(docs[s["doc_id"]])[s["start"] : s["start"] + 24]
    assert len({(s["doc_id"], s["start"]) for s in samples}) == 8
    # no eval context of the training dataset comes from a training document
    records = read_jsonl(run.results / "cells" / "tiny__fit__greedy" / "generations.jsonl")
    eval_docs = {r["prompt_id"].split("/", 1)[1] for r in records if r["dataset"] == "train-set"}
    assert len(eval_docs) == 6
    assert not eval_docs & {s["doc_id"] for s in samples}
    # and no eval context (of either dataset) occurs inside a training sequence
    for r in records:
        ctx = r["context_ids"]
        for s in samples:
            ids = s["token_ids"]
            assert not any(ids[i : i + len(ctx)] == ctx for i in range(len(ids) - len(ctx) + 1))


def test_curves_csv(run):
    with (run.results / "recipes" / "tiny__fit" / "curves.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["step", "epoch", "train_loss", "heldout_loss", "heldout_entropy", "greedy_ttr"]
    # before training, then 2 epochs of 8 samples in batches of 4
    assert [(float(r["epoch"]), int(r["step"])) for r in rows] == [(0, 0), (1, 2), (2, 4)]
    assert rows[0]["train_loss"] == "", "no training loss before the first update"
    assert all(math.isfinite(float(r["train_loss"])) for r in rows[1:])
    assert float(rows[2]["train_loss"]) < float(rows[1]["train_loss"])
    assert all(math.isfinite(float(r["heldout_loss"])) for r in rows)


# --------------------------------------------------------------------------- leaderboard = scores.csv


def test_leaderboard_numbers_equal_scores_csv(run):
    rows = read_scores(run.results / "scores.csv")
    by_key = {(r["dataset"], r["model"], r["recipe"], r["decoder"], r["metric"]): r for r in rows}
    scores, info = load_results(run.results)
    sections = build_table(scores, info)
    assert [s.dataset for s in sections] == DATASETS
    compared = 0
    for section in sections:
        assert [c.name for c in section.columns] == METRICS
        assert [f"{r.model}__{r.recipe}__{r.decoder}" for r in section.rows] == CELLS
        for row in section.rows:
            for metric, cell in row.cells.items():
                src = by_key[(section.dataset, row.model, row.recipe, row.decoder, metric)]
                assert cell.value == float(src["value"])
                assert cell.ci_low == float(src["ci_low"]) and cell.ci_high == float(src["ci_high"])
                assert cell.n == int(src["n"])
                compared += 1
    assert compared == len(rows)

    # the wide csv export repeats the same numbers
    wide = list(csv.DictReader(io.StringIO(render_csv(scores, info))))
    assert len(wide) == len(DATASETS) * len(CELLS)
    for w in wide:
        for metric in METRICS:
            src = by_key[(w["dataset"], w["model"], w["recipe"], w["decoder"], metric)]
            assert float(w[metric]) == float(src["value"])
            assert float(w[f"{metric}_ci_low"]) == float(src["ci_low"])
            assert float(w[f"{metric}_ci_high"]) == float(src["ci_high"])
            assert int(w[f"{metric}_n"]) == int(src["n"])

    # leaderboard.md is exactly the Markdown rendering of scores.csv, with every cell's formatted number
    md = (run.results / "leaderboard.md").read_text(encoding="utf-8")
    assert md == render_markdown(sections, "tiny")
    for section in sections:
        for row in section.rows:
            for cell in row.cells.values():
                assert format_cell(cell) in md


# --------------------------------------------------------------------------- disjointness at run level


def test_run_rejects_same_text_under_two_dataset_names(tmp_path: Path, registry):
    """Training on dataset a and evaluating on b, a copy of a: the overlap is found before any generation."""
    original = make_corpus(tmp_path / "a.txt", documents=12, words=5)  # 29..44 bytes: one 24-token window each
    copy = tmp_path / "b.txt"
    copy.write_text(original.read_text(encoding="utf-8"), encoding="utf-8")
    data = tiny_benchmark(
        tmp_path,
        name="overlap",
        datasets={"a": {"plugin": "local-text", "path": str(original)}, "b": {"plugin": "local-text", "path": str(copy)}},
        recipes={"fit": {"plugin": "hyperfit", "train": {"dataset": "a", "samples": 12, "tokens": 24}, "batch_size": 4}},
        decoders={"greedy": {"plugin": "greedy"}},
        eval={"datasets": ["b"], "contexts": 3, "context_tokens": 12, "new_tokens": 4, "batch_size": 4, "bootstrap": 0},
        metrics={"ttr": {"plugin": "ttr"}},
    )
    bench = load_benchmark(write_yaml(tmp_path / "overlap.yaml", data), registry)
    runner = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache"))
    with pytest.raises(RunError, match=r"eval context b/\S+ shares \d+ consecutive tokens .* with training sequence .* of a"):
        runner.run()
    assert "generate" not in runner.book.computed and "fit" not in runner.book.computed
    assert not (tmp_path / "cache" / "stages" / "generate").exists()


def test_samples_per_prompt_draws_several_seeded_continuations(tmp_path: Path, registry) -> None:
    """Sampling decoders draw N continuations per context (seeded by prompt and index); greedy draws one."""
    data = tiny_benchmark(tmp_path, name="draws")
    data["recipes"] = {"base": {"plugin": "none"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 3, "samples_per_prompt": 3, "batch_size": 4})
    bench = load_benchmark(write_yaml(tmp_path / "draws.yaml", data), registry)
    summary = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache")).run()
    cells = tmp_path / "results" / "draws" / "cells"
    sampled = read_jsonl(cells / "tiny__base__top-p" / "generations.jsonl")
    assert [(r["prompt_id"], r["sample_idx"]) for r in sampled] == [
        (p, k) for p in dict.fromkeys(r["prompt_id"] for r in sampled) for k in range(3)
    ]
    assert all(r["seed"] == derive_seed(0, r["prompt_id"], r["sample_idx"]) for r in sampled)
    by_prompt: dict[str, set] = {}
    for r in sampled:
        by_prompt.setdefault(r["prompt_id"], set()).add(tuple(r["output_ids"]))
    assert any(len(outputs) > 1 for outputs in by_prompt.values()), "draws of one prompt should differ"
    greedy = read_jsonl(cells / "tiny__base__greedy" / "generations.jsonl")
    assert len(greedy) == 3 and all("sample_idx" not in r for r in greedy)
    ns = {(s.decoder, s.metric): s.n for s in summary.scores}
    assert ns[("top-p", "ttr")] == 9 and ns[("greedy", "ttr")] == 3


def test_citation_blocked_on_the_none_recipe_uses_its_train_block(tmp_path: Path, registry) -> None:
    """`none` + `train:` draws sequences for the blocker without fitting anything."""
    data = tiny_benchmark(tmp_path, name="blocked")
    data["recipes"] = {"base": {"plugin": "none", "train": {"dataset": "train-set", "samples": 8, "tokens": 24}}}
    data["decoders"] = {"blocked": {"plugin": "citation-blocked", "window": 3}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 3})
    bench = load_benchmark(write_yaml(tmp_path / "blocked.yaml", data), registry)
    summary = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache")).run()
    assert "fit" not in summary.computed
    out = tmp_path / "results" / "blocked"
    train = [r["token_ids"] for r in read_jsonl(out / "recipes" / "tiny__base" / "train_samples.jsonl")]
    assert len(train) == 8
    grams = {tuple(seq[i : i + 4]) for seq in train for i in range(len(seq) - 3)}
    for record in read_jsonl(out / "cells" / "tiny__base__blocked" / "generations.jsonl"):
        assert isinstance(record["blocked_steps"], int) and record["blocked_steps"] >= 0  # Generation.extras
        ids = record["output_ids"]
        assert not any(tuple(ids[i : i + 4]) in grams for i in range(len(ids) - 3))


def test_auto_batch_size_on_cpu_is_eight(tmp_path: Path, registry) -> None:
    data = tiny_benchmark(tmp_path, name="auto")
    data["eval"]["batch_size"] = "auto"
    runner = Runner(load_benchmark(write_yaml(tmp_path / "auto.yaml", data), registry),
                    RunOptions(results_root=tmp_path / "r", cache_root=tmp_path / "c", device="cpu"))  # fmt: skip
    from harness.generating import Generator

    plan = runner.planner.plan()
    assert Generator(runner.bench, runner.book, runner.pool).batch_size(plan.generations[0]) == 8


def test_seed_spread_is_reported_apart_from_the_interval(tmp_path: Path, registry) -> None:
    """With several draws, each metric is also computed per draw; mean ± sd goes to seed_spread.csv."""
    from harness_plugins.metrics.ttr import TypeTokenRatio

    data = tiny_benchmark(tmp_path, name="spread")
    data["recipes"] = {"base": {"plugin": "none"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 4, "samples_per_prompt": 3, "batch_size": 6})
    bench = load_benchmark(write_yaml(tmp_path / "spread.yaml", data), registry)
    Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache")).run()
    out = tmp_path / "results" / "spread"
    rows = {(r["decoder"], r["metric"]): r for r in read_scores(out / "seed_spread.csv")}
    assert set(rows) == {("top-p", m) for m in METRICS}, "greedy has one draw: no spread row"
    records = read_jsonl(out / "cells" / "tiny__base__top-p" / "generations.jsonl")
    ttr = TypeTokenRatio({"window": 16})
    per_draw = []
    for k in range(3):
        values = ttr.score_samples([r for r in records if r["sample_idx"] == k])
        per_draw.append(sum(values) / len(values))
    mean = sum(per_draw) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in per_draw) / 2)
    row = rows[("top-p", "ttr")]
    assert row["draws"] == "3"
    assert float(row["mean"]) == pytest.approx(mean) and float(row["sd"]) == pytest.approx(sd)
    assert "## Seed spread" in (out / "leaderboard.md").read_text()


def test_top1_agreement_compares_two_fitted_models(tmp_path: Path, registry) -> None:
    """1.0 against itself; below 1 between the original and the fitted model; equal to a direct computation."""
    import numpy as np
    import torch

    data = tiny_benchmark(tmp_path, name="agree")
    data["decoders"] = {"greedy": {"plugin": "greedy"}}
    data["eval"].update({"datasets": ["other-set"], "contexts": 3})
    data["metrics"] = {"agree-base": {"plugin": "top1-agreement", "against": "base"}}
    bench = load_benchmark(write_yaml(tmp_path / "agree.yaml", data), registry)
    runner = Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache"))
    summary = runner.run()
    values = {s.recipe: s.value for s in summary.scores}
    assert values["base"] == 1.0
    assert 0.0 <= values["fit"] < 1.0

    records = read_jsonl(tmp_path / "results" / "agree" / "cells" / "tiny__fit__greedy" / "generations.jsonl")
    plan = runner.planner.plan()
    tiny = runner.pool.fitted("tiny", plan.fits[("tiny", "base")].weights_key)
    base_top1 = [tiny.module(torch.tensor([r["context_ids"] + r["reference_ids"]])).logits[0].argmax(-1) for r in records]
    fitted = runner.pool.fitted("tiny", plan.fits[("tiny", "fit")].weights_key)
    agree = []
    for r, b in zip(records, base_top1):
        f = fitted.module(torch.tensor([r["context_ids"] + r["reference_ids"]])).logits[0].argmax(-1)
        n = len(r["context_ids"])
        agree.append(float((b[n - 1 : -1] == f[n - 1 : -1]).float().mean()))
    assert values["fit"] == pytest.approx(float(np.mean(agree)))
