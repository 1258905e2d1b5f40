"""The completion protocol: SOS + the first 25% of the rows as context, the rest of the image to generate."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagekit import write_bench

from harness.config import load_benchmark
from harness.errors import ConfigError
from harness.plugin_manager import PluginOptions, load_plugins
from harness.runner import Runner, RunOptions


@pytest.fixture(scope="module")
def registry():
    return load_plugins(PluginOptions()).registry


def runner_for(tmp_path: Path, registry, **overrides) -> Runner:
    bench = load_benchmark(write_bench(tmp_path, **overrides), registry)
    return Runner(bench, RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache"))


@pytest.mark.parametrize(("fraction", "rows"), [(None, 2), (0.25, 2), (0.5, 4), (0.1, 1), (1.0, 7)])
def test_context_is_the_first_rows(tmp_path: Path, registry, fraction, rows):
    spec = {"datasets": ["digits"], "contexts": 3, "batch_size": 4, "bootstrap": 20}
    if fraction is not None:
        spec["context_fraction"] = fraction
    runner = runner_for(tmp_path, registry, eval=spec)
    assert runner.bench.eval.context_fraction == (fraction or 0.25)
    assert runner.planner.eval_lengths("igpt") == (1 + rows * 8, (8 - rows) * 8)
    contexts = runner.planner.contexts("igpt", "digits").contexts
    docs = {d.id: d for d in runner.planner.tokenized("igpt", "digits")}
    for ctx in contexts:
        assert ctx.context_ids[0] == 8  # SOS of an 8-grey palette
        assert len(ctx.context_ids) == 1 + rows * 8 and len(ctx.reference_ids) == (8 - rows) * 8
        assert ctx.context_ids + ctx.reference_ids == list(docs[ctx.doc_id].ids)  # the whole image
        assert ctx.label == docs[ctx.doc_id].label and ctx.modality == "image"


def test_text_lengths_are_refused_for_image_models(tmp_path: Path, registry):
    spec = {"datasets": ["digits"], "contexts": 3, "context_tokens": 16, "new_tokens": 48}
    with pytest.raises(ConfigError) as err:
        load_benchmark(write_bench(tmp_path, eval=spec), registry)
    text = str(err.value)
    assert "eval.context_tokens: does not apply to image models" in text
    assert "eval.new_tokens: does not apply to image models" in text


def test_context_fraction_is_refused_for_text_models(tmp_path: Path, registry):
    from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml

    bench = tiny_benchmark(tmp_path)
    bench["eval"]["context_fraction"] = 0.25
    with pytest.raises(ConfigError, match="eval.context_fraction: does not apply to text models"):
        load_benchmark(write_yaml(tmp_path / "t.yaml", bench), load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry)


def test_different_images_sharing_their_top_rows_are_not_a_leak(tmp_path: Path, registry):
    """Blank or similar top rows recur across digits; only a whole repeated image counts as overlap."""
    from harness.sampling import EvalContext, TrainSample, check_disjoint

    ctx = EvalContext("d/1", "d", "1", [8, 0, 0], [5, 5], modality="image")
    check_disjoint([TrainSample("2", 0, [8, 0, 0, 3, 3])], [ctx], "d")  # same top rows, another image: fine
    with pytest.raises(Exception, match="overlap"):
        check_disjoint([TrainSample("2", 0, [8, 0, 0, 5, 5])], [ctx], "d")  # the same image under another id
