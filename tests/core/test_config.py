"""Benchmark YAML validation: cells, defaults, and every problem reported as FILE:LINE: field.path: message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import TINY_PLUGINS, make_corpus, tiny_benchmark, write_yaml
from harness.config import Cell, ConfigError, load_benchmark
from harness.plugin_manager import PluginOptions, load_plugins
from harness.registry import Registry


@pytest.fixture
def registry() -> Registry:
    loaded = load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),)))
    assert loaded.failures == []
    return loaded.registry


# A hand-written benchmark, so line numbers in messages can be checked against the text itself.
BASE = """\
name: tiny
seed: 0
models:
  tiny:
    loader: tiny-llama
datasets:
  train-set:
    plugin: local-text
    path: {corpus}
  other-set:
    plugin: local-text
    path: {other}
recipes:
  base:
    plugin: none
  fit:
    plugin: hyperfit
    lr: 0.003
    epochs: 2
    batch_size: 4
    train:
      dataset: train-set
      samples: 8
      tokens: 24
decoders:
  greedy:
    plugin: greedy
  top-p:
    plugin: top-p
metrics:
  ttr:
    plugin: ttr
    window: 16
eval:
  datasets: [train-set, other-set]
  contexts: 6
  context_tokens: 12
  new_tokens: 16
  batch_size: 4
  bootstrap: 50
"""


def base_text(tmp_path: Path) -> str:
    corpus = make_corpus(tmp_path / "corpus.txt")
    other = make_corpus(tmp_path / "other.txt", seed=1)
    return BASE.format(corpus=corpus, other=other)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the n-th occurrence of ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def write(tmp_path: Path, text: str, name: str = "bench.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, registry: Registry) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_benchmark(path, registry)
    assert str(info.value) == "\n".join(info.value.problems)
    assert info.value.exit_code == 2
    return info.value.problems


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# --------------------------------------------------------------------------- valid benchmarks


def test_base_text_is_valid(tmp_path, registry):
    bench = load_benchmark(write(tmp_path, base_text(tmp_path)), registry)
    assert bench.name == "tiny"
    assert list(bench.models) == ["tiny"]
    assert list(bench.recipes) == ["base", "fit"]
    assert bench.recipes["fit"].train == {"dataset": "train-set", "samples": 8, "tokens": 24, "heldout": 16}
    assert bench.recipes["base"].train is None
    assert bench.eval.datasets == ["train-set", "other-set"]


def test_default_matrix_is_the_full_product(tmp_path, registry):
    path = write_yaml(tmp_path / "tiny.yaml", tiny_benchmark(tmp_path))
    bench = load_benchmark(path, registry)
    assert bench.path == path
    assert bench.cells == [
        Cell("tiny", "base", "greedy"),
        Cell("tiny", "base", "top-p"),
        Cell("tiny", "fit", "greedy"),
        Cell("tiny", "fit", "top-p"),
    ]
    assert [c.id for c in bench.cells][0] == "tiny__base__greedy"
    assert list(bench.metrics) == ["ttr", "self-bleu", "entropy"]
    assert bench.eval.contexts == 6 and bench.eval.bootstrap == 50


def test_default_matrix_with_two_models(tmp_path, registry):
    data = tiny_benchmark(tmp_path)
    data["models"]["wide"] = {"loader": "tiny-llama", "hidden": 64}
    bench = load_benchmark(write_yaml(tmp_path / "two.yaml", data), registry)
    assert len(bench.cells) == 2 * 2 * 2
    assert [c.model for c in bench.cells] == ["tiny"] * 4 + ["wide"] * 4
    assert bench.models["wide"].params == {"seed": 0, "hidden": 64, "layers": 2, "dtype": "float32"}


def test_explicit_matrix_restricts_and_dedups(tmp_path, registry):
    data = tiny_benchmark(
        tmp_path,
        matrix=[
            {"recipe": "base", "decoder": "top-p"},
            {"recipe": ["fit", "base"], "decoder": "greedy"},
            {"model": "tiny", "recipe": "base", "decoder": "top-p"},  # duplicate of the first
            {"recipe": "fit", "decoder": ["greedy"]},  # duplicate of the second's first
        ],
    )
    bench = load_benchmark(write_yaml(tmp_path / "m.yaml", data), registry)
    assert bench.cells == [
        Cell("tiny", "base", "top-p"),
        Cell("tiny", "fit", "greedy"),
        Cell("tiny", "base", "greedy"),
    ]


def test_name_defaults_to_file_stem(tmp_path, registry):
    data = tiny_benchmark(tmp_path)
    del data["name"]
    bench = load_benchmark(write_yaml(tmp_path / "from-stem.yaml", data), registry)
    assert bench.name == "from-stem"


def test_resolved_fills_every_default(tmp_path, registry):
    data = tiny_benchmark(tmp_path)
    data["recipes"]["fit"] = {"plugin": "hyperfit", "train": {"dataset": "train-set"}, "lr": 1}
    data["eval"] = {"datasets": ["other-set"]}
    bench = load_benchmark(write_yaml(tmp_path / "defaults.yaml", data), registry)
    resolved = bench.resolved()
    assert resolved["name"] == "tiny" and resolved["seed"] == 0 and resolved["description"] == ""
    assert resolved["models"] == {"tiny": {"loader": "tiny-llama", "seed": 0, "hidden": 32, "layers": 2, "dtype": "float32"}}
    assert resolved["decoders"] == {
        "greedy": {"plugin": "greedy"},
        "top-p": {"plugin": "top-p", "p": 0.9, "temperature": 0.7, "top_k": 50},
    }
    fit = resolved["recipes"]["fit"]
    from harness_plugins.recipes.hyperfit import Hyperfit

    assert fit == {"plugin": "hyperfit"} | {p.name: p.default for p in Hyperfit.params} | {
        "lr": 1.0, "train": {"dataset": "train-set", "samples": 2000, "tokens": 256, "heldout": 16},
    }  # fmt: skip
    assert fit["batch_size"] == 8 and fit["epochs"] == 20 and fit["weight_decay"] == 0.0 and fit["optimizer"] == "adam"
    assert type(fit["lr"]) is float
    assert resolved["recipes"]["base"] == {"plugin": "none"}
    assert resolved["datasets"]["train-set"]["split"] == "blank-line"
    assert resolved["datasets"]["train-set"]["id_field"] is None
    assert resolved["metrics"]["ttr"] == {"plugin": "ttr", "window": 16, "unit": "token-ids"}
    assert resolved["metrics"]["self-bleu"]["max_order"] == 4
    assert resolved["eval"] == {
        "datasets": ["other-set"], "contexts": 100, "context_tokens": 32, "new_tokens": 96,
        "batch_size": 8, "bootstrap": 1000, "samples_per_prompt": 1, "stop_at_eos": False, "overlap_ngram": 13,
    }  # fmt: skip
    assert resolved["matrix"][0] == {"model": "tiny", "recipe": "base", "decoder": "greedy"}
    assert len(resolved["matrix"]) == 4
    # the whole thing is plain data: it survives a YAML round trip unchanged
    assert yaml.safe_load(yaml.safe_dump(resolved)) == resolved


# --------------------------------------------------------------------------- single problems, exact messages


def test_unknown_plugin_name_with_did_you_mean(tmp_path, registry):
    text = edit(base_text(tmp_path), "plugin: top-p", "plugin: top_p")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:{line_of(text, "plugin: top_p")}: decoders.top-p.plugin: unknown decoder "top_p" (did you mean "top-p"?)'
    ]


def test_unknown_model_loader_lists_choices(tmp_path, registry):
    text = edit(base_text(tmp_path), "loader: tiny-llama", "loader: gpt-17")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:5: models.tiny.loader: unknown model loader "gpt-17" '
        "(choose from: embedded-smollm2, hf-causal-lm, imagegpt, tiny-llama)"
    ]


def test_missing_plugin_key(tmp_path, registry):
    text = edit(base_text(tmp_path), "    plugin: greedy\n", "    volume: 3\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, '  greedy:')}: decoders.greedy: missing `plugin:` (the registered decoder name)"
    ]


def test_unknown_param_with_did_you_mean(tmp_path, registry):
    text = edit(base_text(tmp_path), "    plugin: top-p\n", "    plugin: top-p\n    temprature: 0.5\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'temprature')}: decoders.top-p.temprature: "
        "unknown parameter 'temprature' (did you mean \"temperature\"?)"
    ]


def test_mistyped_param(tmp_path, registry):
    text = edit(base_text(tmp_path), "    plugin: top-p\n", "    plugin: top-p\n    top_k: fifty\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'top_k: fifty')}: decoders.top-p.top_k: expected int, got str 'fifty'"
    ]


def test_float_for_int_param(tmp_path, registry):
    text = edit(base_text(tmp_path), "    epochs: 2\n", "    epochs: 2.5\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'epochs: 2.5')}: recipes.fit.epochs: expected int, got float 2.5"
    ]


def test_out_of_range_param(tmp_path, registry):
    text = edit(base_text(tmp_path), "    plugin: top-p\n", "    plugin: top-p\n    p: 1.5\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [f"{path}:{line_of(text, 'p: 1.5')}: decoders.top-p.p: 1.5 must be at most 1.0"]


def test_exclusive_minimum_param(tmp_path, registry):
    text = edit(base_text(tmp_path), "    lr: 0.003\n", "    lr: 0\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [f"{path}:{line_of(text, 'lr: 0')}: recipes.fit.lr: 0.0 must be above 0.0"]


def test_bad_choice(tmp_path, registry):
    text = edit(base_text(tmp_path), "    lr: 0.003\n", "    optimizer: adan\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'optimizer')}: recipes.fit.optimizer: 'adan' is not allowed (did you mean \"adam\"?)"
    ]


def test_missing_required_param_points_at_the_component(tmp_path, registry):
    text = base_text(tmp_path)
    text = edit(text, f"    path: {tmp_path / 'other.txt'}\n", "")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'other-set:')}: datasets.other-set.path: required parameter 'path' is missing"
    ]


def test_undefined_dataset_in_eval(tmp_path, registry):
    text = edit(base_text(tmp_path), "datasets: [train-set, other-set]", "datasets: [train-set, other-sett]")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:{line_of(text, "other-sett")}: eval.datasets.1: undefined dataset "other-sett" (did you mean "other-set"?)'
    ]


def test_undefined_dataset_in_eval_block_list(tmp_path, registry):
    text = edit(base_text(tmp_path), "  datasets: [train-set, other-set]\n", "  datasets:\n    - train-set\n    - wiki\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:{line_of(text, "- wiki")}: eval.datasets.1: undefined dataset "wiki" (choose from: other-set, train-set)'
    ]


def test_undefined_dataset_in_recipe_train(tmp_path, registry):
    text = edit(base_text(tmp_path), "      dataset: train-set\n", "      dataset: trian-set\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:{line_of(text, "dataset: trian-set")}: recipes.fit.train.dataset: '
        'undefined dataset "trian-set" (did you mean "train-set"?)'
    ]


def test_missing_train_block_on_a_training_recipe(tmp_path, registry):
    text = base_text(tmp_path)
    start = text.index("    train:\n")
    text = text[:start] + text[text.index("decoders:") :]
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, '  fit:')}: recipes.fit.train: recipe \"hyperfit\" needs "
        "`train: {dataset: NAME, samples: N, tokens: T}`, got None"
    ]


def test_train_block_params_are_checked(tmp_path, registry):
    text = edit(base_text(tmp_path), "      tokens: 24\n", "      tokens: 1\n      sample: 3\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'tokens: 1')}: recipes.fit.train.tokens: 1 must be at least 2",
        f"{path}:{line_of(text, 'sample: 3')}: recipes.fit.train.sample: "
        "unknown parameter 'sample' (did you mean \"samples\"?)",
    ]


def test_undefined_decoder_in_matrix(tmp_path, registry):
    text = base_text(tmp_path) + "matrix:\n  - {model: tiny, recipe: base, decoder: beam}\n"
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:{line_of(text, "decoder: beam")}: matrix.0.decoder: undefined decoder "beam" (choose from: greedy, top-p)'
    ]


def test_unknown_key_in_matrix_entry(tmp_path, registry):
    text = base_text(tmp_path) + "matrix:\n  - recipe: base\n    decoders: greedy\n"
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'decoders: greedy')}: matrix.0.decoders: unknown key 'decoders' (did you mean \"decoder\"?)"
    ]


def test_impossible_size_batch_larger_than_samples(tmp_path, registry):
    text = edit(base_text(tmp_path), "    batch_size: 4\n", "    batch_size: 16\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'batch_size: 16')}: recipes.fit.batch_size: "
        "16 is larger than train.samples 8: not one full batch per epoch"
    ]


def test_unknown_top_level_key(tmp_path, registry):
    text = base_text(tmp_path) + "decoder: greedy\n"
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'decoder: greedy')}: decoder: unknown top-level key 'decoder' (did you mean \"decoders\"?)"
    ]


def test_duplicate_yaml_key_points_at_the_second_one(tmp_path, registry):
    text = edit(base_text(tmp_path), "seed: 0\n", "seed: 0\nseed: 1\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [f"{path}:3: seed: duplicate key 'seed'"]


def test_duplicate_nested_yaml_key(tmp_path, registry):
    text = edit(base_text(tmp_path), "    window: 16\n", "    window: 16\n    window: 32\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'window: 32')}: metrics.ttr.window: duplicate key 'window'"
    ]


def test_invalid_yaml_syntax_names_the_line(tmp_path, registry):
    text = edit(base_text(tmp_path), "  contexts: 6\n", "  contexts: 6: 7\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'contexts: 6: 7')}: invalid YAML: mapping values are not allowed here"
    ]


def test_invalid_yaml_unclosed_bracket(tmp_path, registry):
    text = edit(base_text(tmp_path), "datasets: [train-set, other-set]", "datasets: [train-set, other-set")
    path = write(tmp_path, text)
    [problem] = problems_of(path, registry)
    assert problem.startswith(f"{path}:")
    assert ": invalid YAML: " in problem


def test_missing_file(tmp_path, registry):
    path = tmp_path / "nope.yaml"
    assert problems_of(path, registry) == [f"{path}: no such benchmark file"]


def test_directory_instead_of_file(tmp_path, registry):
    problems = problems_of(tmp_path, registry)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path}: cannot read benchmark file")


def test_top_level_not_a_mapping(tmp_path, registry):
    path = write(tmp_path, "- a\n- b\n")
    assert problems_of(path, registry) == [f"{path}:1: (top level): expected a mapping at the top level, got list"]


def test_empty_file(tmp_path, registry):
    path = write(tmp_path, "")
    assert problems_of(path, registry) == [f"{path}: (top level): expected a mapping at the top level, got NoneType"]


def test_train_on_the_none_recipe_names_sequences_without_training(tmp_path, registry):
    """`none` may carry a `train:` block: the sequences a blocking decoder avoids; nothing is fitted."""
    text = edit(base_text(tmp_path), "    plugin: none\n", "    plugin: none\n    train: {dataset: train-set}\n")
    bench = load_benchmark(write(tmp_path, text), registry)
    assert bench.recipes["base"].train == {"dataset": "train-set", "samples": 2000, "tokens": 256, "heldout": 0}


def test_component_name_with_double_underscore(tmp_path, registry):
    text = edit(base_text(tmp_path), "  top-p:\n", "  top__p:\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'top__p:')}: decoders.top__p: 'top__p' is not a valid name "
        "(letters, digits, '.', '_', '-'; no '__')"
    ]


def test_benchmark_name_with_double_underscore(tmp_path, registry):
    text = edit(base_text(tmp_path), "name: tiny\n", "name: my__bench\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:1: name: 'my__bench' is not a valid name (letters, digits, '.', '_', '-'; no '__')"
    ]


@pytest.mark.parametrize("bad", ["-lead", "has space", "a/b", "ünï"])
def test_other_bad_names(tmp_path, registry, bad):
    data = tiny_benchmark(tmp_path)
    data["models"] = {bad: {"loader": "tiny-llama"}}
    path = write_yaml(tmp_path / "bad.yaml", data)
    [problem] = problems_of(path, registry)
    assert f": models.{bad}: {bad!r} is not a valid name" in problem


def test_bad_seed_and_description(tmp_path, registry):
    text = edit(base_text(tmp_path), "seed: 0\n", "seed: -1\ndescription: [a]\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:2: seed: expected a non-negative int, got -1",
        f"{path}:3: description: expected a string, got ['a']",
    ]


def test_missing_sections(tmp_path, registry):
    path = write(tmp_path, "name: empty\n")
    problems = problems_of(path, registry)
    assert problems == [
        f"{path}:1: models: missing section: define at least one model loader",
        f"{path}:1: datasets: missing section: define at least one dataset",
        f"{path}:1: recipes: missing section: define at least one recipe",
        f"{path}:1: decoders: missing section: define at least one decoder",
        f"{path}:1: metrics: missing section: define at least one metric",
        f"{path}:1: eval: expected a mapping with at least `datasets: [...]`, got None",
    ]


def test_eval_params_are_checked(tmp_path, registry):
    text = edit(base_text(tmp_path), "  contexts: 6\n", "  contexts: 0\n  context: 5\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f"{path}:{line_of(text, 'contexts: 0')}: eval.contexts: 0 must be at least 1",
        f"{path}:{line_of(text, 'context: 5')}: eval.context: unknown parameter 'context' (did you mean \"contexts\"?)",
    ]


# --------------------------------------------------------------------------- many problems at once


def test_all_problems_are_reported_at_once(tmp_path, registry):
    text = base_text(tmp_path)
    text = edit(text, "    plugin: top-p\n", "    plugin: top_p\n")
    text = edit(text, "    window: 16\n", "    window: zero\n")
    text = edit(text, "    batch_size: 4\n", "    batch_size: 16\n")
    text = edit(text, "datasets: [train-set, other-set]", "datasets: [train-set, news]")
    text += "extra: 1\n"
    path = write(tmp_path, text)
    problems = problems_of(path, registry)
    assert problems == [
        f"{path}:{line_of(text, 'extra: 1')}: extra: unknown top-level key 'extra'"
        " (choose from: baselines, datasets, decoders, description, eval, matrix, metrics, models, name, recipes, seed, trackers)",
        f'{path}:{line_of(text, "top_p")}: decoders.top-p.plugin: unknown decoder "top_p" (did you mean "top-p"?)',
        f"{path}:{line_of(text, 'window: zero')}: metrics.ttr.window: expected int, got str 'zero'",
        f'{path}:{line_of(text, "news]")}: eval.datasets.1: undefined dataset "news" (choose from: other-set, train-set)',
        f"{path}:{line_of(text, 'batch_size: 16')}: recipes.fit.batch_size: "
        "16 is larger than train.samples 8: not one full batch per epoch",
    ]
    # the single exception message lists them all, one per line
    with pytest.raises(ConfigError) as info:
        load_benchmark(path, registry)
    assert str(info.value).count("\n") == len(problems) - 1


# --------------------------------------------------------------------------- regressions found in review


def test_unhashable_eval_dataset_entry_is_a_config_error(tmp_path, registry):
    text = edit(base_text(tmp_path), "datasets: [train-set, other-set]", "datasets: [train-set, {name: x}]")
    path = write(tmp_path, text)
    [problem] = problems_of(path, registry)
    assert ": eval.datasets.1: " in problem


def test_unhashable_matrix_value_is_a_config_error(tmp_path, registry):
    text = base_text(tmp_path) + "matrix:\n  - decoder: {name: greedy}\n"
    path = write(tmp_path, text)
    [problem] = problems_of(path, registry)
    assert ": matrix.0.decoder: " in problem


def test_defined_dataset_with_bad_plugin_is_not_also_undefined(tmp_path, registry):
    text = edit(base_text(tmp_path), "  train-set:\n    plugin: local-text\n", "  train-set:\n    plugin: local_text\n")
    path = write(tmp_path, text)
    assert problems_of(path, registry) == [
        f'{path}:{line_of(text, "local_text")}: datasets.train-set.plugin: '
        'unknown dataset "local_text" (did you mean "local-text"?)'
    ]


def test_matrix_with_no_cells_is_rejected(tmp_path, registry):
    text = base_text(tmp_path) + "matrix:\n  - decoder: []\n"
    path = write(tmp_path, text)
    problems = problems_of(path, registry)
    assert any("matrix" in p for p in problems)


def test_eval_batch_size_accepts_auto_and_rejects_other_words(tmp_path, registry):
    text = base_text(tmp_path)
    assert "\n  batch_size: 4\n" in text  # eval's (recipes indent deeper)
    bench = load_benchmark(write(tmp_path, edit(text, "\n  batch_size: 4\n", '\n  batch_size: "auto"\n')), registry)
    assert bench.eval.batch_size == "auto"
    with pytest.raises(ConfigError) as info:
        load_benchmark(write(tmp_path, edit(text, "\n  batch_size: 4\n", "\n  batch_size: big\n")), registry)
    (problem,) = info.value.problems
    assert problem.endswith("eval.batch_size: expected a positive int or \"auto\", got 'big'")


def test_yaml_merge_keys_may_override_merged_values(tmp_path, registry):
    """`<<: *anchor` then a key of its own is YAML's way to vary one field, not a duplicate key."""
    text = base_text(tmp_path).replace("  fit:\n", "  fit: &fit\n", 1)
    text = text.replace("decoders:", "  fit2:\n    <<: *fit\n    epochs: 3\ndecoders:", 1)
    bench = load_benchmark(write(tmp_path, text), registry)
    assert bench.recipes["fit2"].params["epochs"] == 3
    assert bench.recipes["fit2"].train == bench.recipes["fit"].train
    assert bench.recipes["fit"].params["epochs"] != 3
