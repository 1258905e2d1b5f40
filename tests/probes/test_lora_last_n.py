"""``lora`` with ``last_n: N``: adapters on exactly the last N blocks, so only those blocks change after the fit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import tiny_benchmark, tiny_module
from harness.api import FitContext, InputError
from harness.errors import ConfigError
from harness.params import resolve_params
from harness.testing import load_test_benchmark, run_benchmark

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from harness_plugins.recipes.lora import LoRA  # noqa: E402

LAYERS = 4


def sequences(count: int = 8, tokens: int = 24, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(2, 258) for _ in range(tokens)] for _ in range(count)]


def fit(tmp_path: Path, **given):
    config, problems = resolve_params(LoRA.params, {"lr": 1e-2, "batch_size": 4, "epochs": 2, "curve_every": 0, **given})
    assert not problems.items, problems.items
    tiny = tiny_module()
    handle = tiny.TinyHandle(tiny.tiny_llama(layers=LAYERS), tiny.ByteCodec(), device="cpu")
    before = {k: v.detach().clone() for k, v in handle.module.state_dict().items()}
    outcome = LoRA(config).fit(handle, sequences(), FitContext(seed=1, work_dir=tmp_path))
    after = handle.module.state_dict()
    assert set(after) == set(before)  # merged back into a plain model
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    return changed, outcome


def block(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[2]) if name.startswith("model.layers.") else None


@pytest.mark.parametrize("last_n", [1, 3])
def test_only_the_last_n_blocks_change(tmp_path: Path, last_n: int):
    changed, outcome = fit(tmp_path, last_n=last_n)
    blocks = {block(name) for name in changed}
    assert blocks == set(range(LAYERS - last_n, LAYERS)), sorted(changed)
    assert outcome.facts["adapted_layers"] == list(range(LAYERS - last_n, LAYERS))
    # every linear layer of those blocks was adapted (attention and MLP projections), nothing outside the blocks
    kinds = {name.split(".")[-2] for name in changed}
    assert kinds == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_default_is_unchanged_every_block_and_late_fraction(tmp_path: Path):
    changed, outcome = fit(tmp_path / "all")
    assert {block(n) for n in changed} == set(range(LAYERS)) and outcome.facts["adapted_layers"] == "all"
    changed, outcome = fit(tmp_path / "late", layers="late", late_fraction=0.5)
    assert {block(n) for n in changed} == {2, 3} and outcome.facts["adapted_layers"] == [2, 3]
    assert {p.name: p.default for p in LoRA.params}["last_n"] == 0


def test_conflicts_and_bounds(tmp_path: Path):
    bench = tiny_benchmark(tmp_path)
    bench["recipes"]["lora"] = {"plugin": "lora", "train": {"dataset": "train-set", "samples": 8, "tokens": 24},
                                "batch_size": 4, "layers": "late", "last_n": 2}  # fmt: skip
    with pytest.raises(ConfigError, match="last_n: 2 and layers: late both choose the adapted blocks|2 and layers: late"):
        load_test_benchmark(bench, tmp_path)
    bench["recipes"]["lora"] |= {"layers": "all", "last_n": -1}
    with pytest.raises(ConfigError, match="last_n"):
        load_test_benchmark(bench, tmp_path)
    with pytest.raises(InputError, match="last_n 5 is more than the model's 4"):
        fit(tmp_path, last_n=5)


def test_runner_fits_lora_on_the_last_block(tmp_path: Path):
    recipes = {"lora": {"plugin": "lora", "train": {"dataset": "train-set", "samples": 8, "tokens": 24},
                        "lr": 1e-2, "batch_size": 4, "epochs": 1, "last_n": 1, "curve_every": 0}}  # fmt: skip
    bench = tiny_benchmark(tmp_path, models={"tiny": {"loader": "tiny-llama", "layers": LAYERS}}, recipes=recipes,
                           decoders={"greedy": {"plugin": "greedy"}}, metrics={"ttr": {"plugin": "ttr", "window": 16}})  # fmt: skip
    bench["eval"] |= {"contexts": 2, "datasets": ["other-set"]}
    run = run_benchmark(bench, tmp_path)
    key = json.loads((run.results_dir / "manifest.json").read_text())["stage_keys"]["fit"]["tiny/lora"]
    from safetensors.torch import load_file

    fitted = load_file(str(tmp_path / "cache" / "fits" / key / "weights.safetensors"))
    base = tiny_module().tiny_llama(layers=LAYERS).state_dict()
    assert {block(n) for n in base if not torch.equal(base[n], fitted[n])} == {LAYERS - 1}
