"""``lm-eval``: lm-evaluation-harness tasks on the evaluated weights, in-process and offline.

The shipped task (benchmarks/tasks/simple_facts.yaml) runs on a tiny random-init Llama with a BPE tokenizer
(no hub, HF_DATASETS_OFFLINE=1 from conftest); its acc / acc_norm are checked against a log-likelihood
computation by hand with torch on the same items, on the base weights and on the fitted weights of a real run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import WORDS, make_corpus
from harness.api import InputError, MetricContext
from harness.testing import run_benchmark, save_tiny_hf_model

torch = pytest.importorskip("torch")
pytest.importorskip("lm_eval")

from harness_plugins.metrics.lm_eval_tasks import LMEvalTasks  # noqa: E402

TASKS = Path(__file__).resolve().parents[2] / "benchmarks" / "tasks"
TASK = "hyperfit_simple_facts"


def items() -> list[dict]:
    return [json.loads(line) for line in (TASKS / "simple_facts.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    texts = [" ".join(WORDS)] * 4 + [f"{it['query']} {' '.join(it['choices'])}" for it in items()]
    return save_tiny_hf_model(tmp_path_factory.mktemp("tiny-lm"), texts, vocab_size=400)


def load(model_dir: Path, weights: Path | None = None):
    from harness_plugins.models._hf_handle import load_causal_lm

    handle = load_causal_lm(str(model_dir), "cpu", "float32")
    if weights is not None:
        handle.load_weights(weights)
    return handle


def by_hand(handle) -> dict[str, float]:
    """acc / acc_norm by the task's definition: score " " + choice after the query (tokens of query + " " + choice
    after the query's own tokens, the tokenizer's special tokens included as it adds them), sum of log-probs."""
    tokenizer, module = handle.codec.tokenizer, handle.module
    right = right_norm = 0
    for item in items():
        context = tokenizer(item["query"])["input_ids"]
        scores = []
        for choice in item["choices"]:
            whole = tokenizer(item["query"] + " " + choice)["input_ids"]
            assert whole[: len(context)] == context
            with torch.no_grad():
                logp = torch.log_softmax(module(input_ids=torch.tensor([whole])).logits[0].float(), dim=-1)
            scores.append(sum(float(logp[t - 1, whole[t]]) for t in range(len(context), len(whole))))
        best = max(range(len(scores)), key=scores.__getitem__)
        best_norm = max(range(len(scores)), key=lambda i: scores[i] / len(item["choices"][i]))
        right += best == item["gold"]
        right_norm += best_norm == item["gold"]
    return {"acc": right / len(items()), "acc_norm": right_norm / len(items())}


def metric(handle, tmp_path: Path | None = None, **params) -> LMEvalTasks:
    instance = LMEvalTasks({"tasks": [TASK], "include_path": str(TASKS), **params})
    instance.context = MetricContext(model=lambda: handle, cache_dir=tmp_path, model_key="weights-1" if tmp_path else None)
    return instance


def test_shipped_task_matches_a_direct_loglikelihood_computation(model_dir: Path, tmp_path: Path):
    handle = load(model_dir)
    expected = by_hand(handle)
    state = {k: v.clone() for k, v in handle.module.state_dict().items()}
    acc = metric(handle)
    assert acc.score_corpus([]) == pytest.approx(expected["acc"], abs=1e-9)
    result = acc.evaluation()
    assert result["tasks"][TASK]["n"] == 32
    low_high = acc.own_interval([])
    se = (expected["acc"] * (1 - expected["acc"]) / 31) ** 0.5
    assert low_high["ci_high"] - acc.score_corpus([]) == pytest.approx(1.96 * se, rel=1e-6)
    # clipped to the items' range: an accuracy interval never leaves [0, 1]
    assert low_high["ci_low"] == max(0.0, acc.score_corpus([]) - 1.96 * se) and low_high["ci_low"] >= 0.0
    assert metric(handle, tmp_path, metric="acc_norm").score_corpus([]) == pytest.approx(expected["acc_norm"])
    assert all(torch.equal(v, state[k]) for k, v in handle.module.state_dict().items())  # the weights are untouched
    # the cached result is read back under the same weights' key, without running lm-eval
    cached = metric(None, tmp_path, metric="acc_norm")
    assert cached.score_corpus([]) == pytest.approx(expected["acc_norm"])
    limited = metric(handle, limit=8)
    assert limited.evaluation()["tasks"][TASK]["n"] == 8


def test_the_score_key_follows_the_task_files(tmp_path: Path):
    folder = tmp_path / "tasks"
    shutil.copytree(TASKS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    first = LMEvalTasks({"tasks": [TASK], "include_path": str(folder)}).input_fingerprint()
    assert first == LMEvalTasks({"tasks": [TASK], "include_path": str(folder)}).input_fingerprint()
    assert first != LMEvalTasks({"tasks": [TASK, "other"], "include_path": str(folder)}).input_fingerprint()
    data = folder / "simple_facts.jsonl"
    data.write_text(data.read_text(encoding="utf-8").replace("Paris", "Lyon"), encoding="utf-8")
    assert LMEvalTasks({"tasks": [TASK], "include_path": str(folder)}).input_fingerprint() != first
    with pytest.raises(InputError, match="is not a folder"):
        LMEvalTasks({"tasks": [TASK], "include_path": str(tmp_path / "none")}).input_fingerprint()


def test_problems_are_clear(model_dir: Path):
    handle = load(model_dir)
    with pytest.raises(InputError, match='no task "hyperfit_simple_fact"'):
        metric(handle, tasks=["hyperfit_simple_fact"]).score_corpus([])
    with pytest.raises(InputError, match='reports no metric "f1"'):
        metric(handle, metric="f1").score_corpus([])
    assert LMEvalTasks.config_problems({"tasks": []})
    no_model = LMEvalTasks({"tasks": [TASK]})
    no_model.context = MetricContext()
    with pytest.raises(InputError, match="needs the evaluated model"):
        no_model.score_corpus([])


def test_runner_scores_base_and_fitted_weights(model_dir: Path, tmp_path: Path):
    corpus, other = make_corpus(tmp_path / "corpus.txt"), make_corpus(tmp_path / "other.txt", seed=1)
    bench = {
        "name": "lmeval", "seed": 0,
        "models": {"tiny": {"loader": "hf-causal-lm", "id": str(model_dir), "dtype": "float32"}},
        "datasets": {"train-set": {"plugin": "local-text", "path": str(corpus)},
                     "other-set": {"plugin": "local-text", "path": str(other)}},
        "recipes": {"base": {"plugin": "none"},
                    "fit": {"plugin": "hyperfit", "train": {"dataset": "train-set", "samples": 8, "tokens": 24},
                            "lr": 3.0e-3, "epochs": 2, "batch_size": 4, "curve_every": 0}},
        "decoders": {"greedy": {"plugin": "greedy"}, "top-p": {"plugin": "top-p"}},
        "eval": {"datasets": ["other-set"], "contexts": 2, "context_tokens": 8, "new_tokens": 8, "bootstrap": 20,
                 "overlap_ngram": 24},
        "metrics": {"retention": {"plugin": "lm-eval", "tasks": [TASK], "include_path": str(TASKS)}},
    }  # fmt: skip
    run = run_benchmark(bench, tmp_path)
    keys = json.loads((run.results_dir / "manifest.json").read_text(encoding="utf-8"))["stage_keys"]["fit"]
    base = by_hand(load(model_dir))["acc"]
    fitted = by_hand(load(model_dir, tmp_path / "cache" / "fits" / keys["tiny/fit"]))["acc"]
    for decoder in ("greedy", "top-p"):  # the generations are not read: one value per fitted model
        assert run.value("retention", recipe="base", decoder=decoder) == pytest.approx(base)
        assert run.value("retention", recipe="fit", decoder=decoder) == pytest.approx(fitted)
    # lm-eval ran once per fitted model: the second decoder read the cached result
    assert len(list((tmp_path / "cache" / "features" / "lm-eval").glob("*.json"))) == 2
