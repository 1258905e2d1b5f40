"""The example plugins, each on its own and all together through the harness (installed entry points)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness_plugin_example import datasets, decoders, metrics, models, recipes

from harness.api import DecodeContext, LoadContext, Metric
from harness.testing import registered, run_benchmark, run_cli

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "example.yaml"
NAMES = {
    "model_loader": "example-char-llama",
    "dataset": "example-counting",
    "recipe": "example-sgd",
    "decoder": "example-no-repeat-greedy",
    "metric": "example-word-repeats",
}


@pytest.mark.parametrize("module", [models, datasets, recipes, decoders, metrics])
def test_each_module_registers_one_plugin_through_its_hook(module) -> None:
    got = registered(module)
    assert len(got) == 1
    (kind, classes), = got.items()
    assert [cls.name for cls in classes] == [NAMES[kind]]


def test_harness_plugins_lists_them_with_this_distribution() -> None:
    code, out = run_cli(["plugins", "--json"])
    assert code == 0, out
    listing = {p["name"]: p for p in json.loads(out)["plugins"]}
    for kind, name in NAMES.items():
        assert listing[name]["kind"] == kind
        assert listing[name]["distribution"] == "harness-plugin-example"


def test_codec_round_trip_and_fingerprint() -> None:
    codec = models.CharCodec()
    assert codec.decode(codec.encode("Twenty one, twenty two.")) == "twenty one, twenty two."
    assert codec.decode(codec.encode("€")) == "?"
    assert codec.fingerprint() == models.CharCodec().fingerprint()


def test_counting_documents() -> None:
    docs = list(datasets.Counting({"documents": 3, "numbers": 4}).documents())
    assert [d.id for d in docs] == ["count/0", "count/4", "count/8"]
    assert docs[1].text == "four, five, six, seven."
    assert datasets.spell(342) == "three hundred forty two" and datasets.spell(900) == "nine hundred"


def test_decoder_never_repeats_the_previous_token(tmp_path) -> None:
    handle = models.CharLlama({"seed": 1}).load(LoadContext(device="cpu", cache_dir=tmp_path))
    contexts = [handle.codec.encode("one, two, three"), handle.codec.encode("ten")]
    out = decoders.NoRepeatGreedy({}).generate(handle, contexts, 12, DecodeContext(seeds=[0, 1]))
    for context, gen in zip(contexts, out):
        ids = context[-1:] + gen.output_ids
        assert all(a != b for a, b in zip(ids, ids[1:]))
        assert len(gen.step_entropy) == len(gen.step_top1) == len(gen.output_ids) == 12  # EOS never picked
        assert handle.codec.eos_token_id not in gen.output_ids and not gen.stopped_at_eos
        assert all(0 < p <= 1 for p in gen.step_top1)
    alone = decoders.NoRepeatGreedy({}).generate(handle, contexts[1:], 12, DecodeContext(seeds=[1]))
    assert alone[0].output_ids == out[1].output_ids  # a row does not depend on its batch


def test_decoder_stops_at_eos_only_when_asked(tmp_path) -> None:
    handle = models.CharLlama({"seed": 1}).load(LoadContext(device="cpu", cache_dir=tmp_path))
    context = handle.codec.encode("one, two, three")
    fixed = decoders.NoRepeatGreedy({}).generate(handle, [context], 12, DecodeContext(seeds=[0]))[0]
    step = next(i for i in range(2, 12) if fixed.output_ids[i] not in fixed.output_ids[:i])
    handle.codec.eos_token_id = fixed.output_ids[step]  # a token greedy first picks at that step becomes EOS
    try:
        kept = decoders.NoRepeatGreedy({}).generate(handle, [context], 12, DecodeContext(seeds=[0]))[0]
        stopped = decoders.NoRepeatGreedy({}).generate(handle, [context], 12, DecodeContext(seeds=[0], stop_at_eos=True))[0]
    finally:
        del handle.codec.eos_token_id  # back to the class attribute
    assert len(kept.output_ids) == 12 and fixed.output_ids[step] not in kept.output_ids
    assert kept.output_ids[:step] == fixed.output_ids[:step] and not kept.stopped_at_eos
    assert stopped.output_ids == fixed.output_ids[:step]
    assert stopped.stopped_at_eos and len(stopped.step_entropy) == len(stopped.output_ids)


def test_metric_values() -> None:
    metric: Metric = metrics.WordRepeats({})
    records = [{"output_text": "the the cat"}, {"output_text": "A a a"}, {"output_text": "one"}]
    assert metric.score_samples(records) == [0.5, 1.0, 0.0]
    assert metrics.WordRepeats({"lowercase": False}).score_samples(records[1:2]) == [0.5]


def test_benchmark_runs_end_to_end_and_resumes(tmp_path) -> None:
    run = run_benchmark(BENCHMARK, tmp_path, extra=())
    assert {r["metric"] for r in run.rows} == {"repeats", "ttr"}
    assert {(r["recipe"], r["decoder"]) for r in run.rows} == {
        ("base", "greedy"), ("base", "no-repeat"), ("sgd", "greedy"), ("sgd", "no-repeat")
    }
    assert all(r["n"] == "4" for r in run.rows)
    # the no-repeat decoder cannot produce "aa"-style runs, but words may still repeat: values are shares
    assert 0.0 <= run.value("repeats", recipe="sgd", decoder="no-repeat") <= 1.0
    curves = (run.results_dir / "recipes" / "char__sgd" / "curves.csv").read_text().splitlines()
    assert curves[0].split(",")[:2] == ["step", "train_loss"] and len(curves) == 21
    again = run_benchmark(BENCHMARK, tmp_path, extra=())
    assert any(run.summary.computed.values())
    assert again.rows == run.rows and not any(again.summary.computed.values())
