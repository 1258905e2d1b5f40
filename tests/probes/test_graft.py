"""``graft``: the base model with the last N blocks (and optionally the final norm and head) of another fit.

Checked directly on the stored weights of a real run on the tiny 3-block Llama: the grafted blocks equal the
fitted model's, every other tensor equals the base's; all blocks + head give the fitted model's logits. Tied
embeddings are checked on a tiny tied Llama through the recipe with a fake FitContext.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import tiny_benchmark, tiny_module
from harness.api import FitContext, InputError
from harness.testing import load_test_benchmark, run_benchmark
from harness_plugins.recipes.graft import Graft, graft_names

torch = pytest.importorskip("torch")

LAYERS = 3


def tensors(path: Path) -> dict[str, "torch.Tensor"]:
    from safetensors.torch import load_file

    return load_file(str(path))


def run(tmp_path: Path, with_train_block: bool):
    train = {"dataset": "train-set", "samples": 8, "tokens": 24}
    recipes = {
        "base": {"plugin": "none"},
        "fit": {"plugin": "hyperfit", "train": train, "lr": 3.0e-3, "epochs": 2, "batch_size": 4, "curve_every": 0},
        "late": {"plugin": "graft", "from": "fit", "blocks": 1},
        "all": {"plugin": "graft", "from": "fit", "blocks": LAYERS, "head": True},
    }
    if with_train_block:
        for key in ("late", "all"):
            recipes[key]["train"] = train
    bench = tiny_benchmark(
        tmp_path, models={"tiny": {"loader": "tiny-llama", "layers": LAYERS}}, recipes=recipes,
        decoders={"greedy": {"plugin": "greedy"}}, metrics={"ttr": {"plugin": "ttr", "window": 16}},
    )  # fmt: skip
    bench["eval"] |= {"contexts": 2, "datasets": ["other-set"]}
    result = run_benchmark(bench, tmp_path)
    manifest = json.loads((result.results_dir / "manifest.json").read_text(encoding="utf-8"))
    keys = manifest["stage_keys"]["fit"]
    cache = tmp_path / "cache"
    weights = {name: tensors(cache / "fits" / keys[f"tiny/{name}"] / "weights.safetensors") for name in ("fit", "late", "all")}
    facts = {name: json.loads((cache / "stages" / "fit" / f"{keys[f'tiny/{name}']}.json").read_text()) for name in ("late", "all")}
    return result, keys, weights, facts


@pytest.mark.parametrize("with_train_block", [False, True], ids=["no-train-block", "train-block"])
def test_graft_takes_exactly_the_last_blocks(tmp_path: Path, with_train_block: bool):
    result, keys, weights, facts = run(tmp_path, with_train_block)
    base = tiny_module().tiny_llama(layers=LAYERS).state_dict()
    fitted, late, every = weights["fit"], weights["late"], weights["all"]
    assert set(late) == set(base) == set(fitted)
    changed = [name for name in base if not torch.equal(base[name], fitted[name])]
    assert any(n.startswith("model.layers.2.") for n in changed) and any(n.startswith("model.layers.0.") for n in changed)
    for name in base:
        expected = fitted if name.startswith("model.layers.2.") else base
        assert torch.equal(late[name], expected[name]), name
    # the last block only, no head: the final norm and the head stay the base's
    assert facts["late"]["grafted_blocks"] == [2] and facts["late"]["grafted_head"] is False
    assert facts["late"]["grafted_parameter_names"] == [n for n in base if n.startswith("model.layers.2.")]
    assert facts["late"]["grafted_parameters"] == sum(base[n].numel() for n in base if n.startswith("model.layers.2."))
    assert facts["late"]["grafted_from"] == "fit" and facts["late"]["steps"] == 0
    # every block + head: everything but the input embeddings, which hyperfit changed too
    head = {"model.norm.weight", "lm_head.weight"}
    assert set(facts["all"]["grafted_parameter_names"]) == {n for n in base if n.startswith("model.layers.")} | head
    for name in base:
        expected = base if name == "model.embed_tokens.weight" else fitted
        assert torch.equal(every[name], expected[name]), name
    # the graft's key holds the fit it reads
    assert keys["tiny/late"] != keys["tiny/all"] and keys["tiny/fit"] not in (keys["tiny/late"], keys["tiny/all"])
    assert {r["recipe"] for r in result.rows} == {"base", "fit", "late", "all"}
    check_logits(weights)


def check_logits(weights: dict[str, dict[str, "torch.Tensor"]]) -> None:
    """All blocks + head compute the fitted model's function from the token embeddings on: given the fitted
    model's embeddings of the tokens, the logits are the fitted model's, bit for bit (hyperfit also changed
    the input embeddings, which a graft of blocks + head leaves at the base's, so from token ids they differ)."""
    tiny = tiny_module()
    ids = torch.tensor([[5, 77, 120, 33, 201, 9, 64, 88]])
    modules = {}
    for name in ("fit", "all"):
        modules[name] = tiny.tiny_llama(layers=LAYERS)
        modules[name].load_state_dict(weights[name])
    with torch.no_grad():
        embeds = modules["fit"].get_input_embeddings()(ids)
        fitted = modules["fit"](inputs_embeds=embeds).logits
        assert torch.equal(modules["all"](inputs_embeds=embeds).logits, fitted)
        assert torch.equal(modules["fit"](input_ids=ids).logits, fitted)
        assert not torch.equal(modules["all"](input_ids=ids).logits, fitted)


# --------------------------------------------------------------------------- the recipe alone


class Donor:
    def __init__(self, handle):
        self.handle = handle
        self.asked: list[str] = []

    def __call__(self, name: str):
        self.asked.append(name)
        return self.handle


def perturbed(module, seed: int = 3):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return module


def tied_llama(layers: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=258, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=1, pad_token_id=0)  # fmt: skip
    return LlamaForCausalLM(config).eval()


def test_tied_embeddings_head_copies_the_shared_matrix(tmp_path: Path):
    tiny = tiny_module()
    base, donor = tied_llama(), perturbed(tied_llama())
    assert base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    handle = tiny.TinyHandle(base, tiny.ByteCodec(), device="cpu")
    load = Donor(tiny.TinyHandle(donor, tiny.ByteCodec(), device="cpu"))
    ctx = FitContext(seed=0, work_dir=tmp_path, load_fitted=load)

    outcome = Graft({"from": "hyperfit", "blocks": 1, "head": False}).fit(handle, [], ctx)
    assert load.asked == ["hyperfit"] and outcome.facts["tied_embeddings"] is True
    assert torch.equal(base.model.embed_tokens.weight, before["model.embed_tokens.weight"])  # head: false never touches it
    assert torch.equal(base.model.norm.weight, before["model.norm.weight"])

    outcome = Graft({"from": "hyperfit", "blocks": 2, "head": True}).fit(handle, [], ctx)
    names = outcome.facts["grafted_parameter_names"]
    assert "model.embed_tokens.weight" in names and "lm_head.weight" in names and "model.norm.weight" in names
    assert base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()  # still tied
    assert torch.equal(base.lm_head.weight, donor.lm_head.weight)
    # with the shared matrix, every block and the norm grafted, the model is the donor: same logits
    ids = torch.tensor([[4, 9, 200, 31, 7]])
    with torch.no_grad():
        assert torch.equal(base(input_ids=ids).logits, donor(input_ids=ids).logits)
    # the shared matrix counts once
    assert outcome.facts["grafted_parameters"] == sum(p.numel() for p in base.parameters())


def test_graft_names_and_problems():
    tiny = tiny_module()
    module = tiny.tiny_llama(layers=3)
    names, indices, tied = graft_names(module, 2, head=False)
    assert indices == [1, 2] and tied is False
    assert names and all(n.startswith(("model.layers.1.", "model.layers.2.")) for n in names)
    names, _, _ = graft_names(module, 1, head=True)
    assert {"model.norm.weight", "lm_head.weight"} <= set(names) and "model.embed_tokens.weight" not in names
    with pytest.raises(InputError, match="blocks 4 is more than the model's 3"):
        graft_names(module, 4, head=False)
    assert Graft({"from": "fit", "blocks": 1}).recipe_dependencies() == ("fit",)


def test_graft_from_an_unknown_recipe_is_refused(tmp_path: Path):
    bench = tiny_benchmark(tmp_path)
    bench["recipes"]["late"] = {"plugin": "graft", "from": "nope", "blocks": 1,
                                "train": {"dataset": "train-set", "samples": 8, "tokens": 24}}  # fmt: skip
    bench["decoders"] = {"greedy": {"plugin": "greedy"}}
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match='recipe "nope"'):
        run_benchmark(bench, tmp_path)
    bench["recipes"]["late"]["blocks"] = 0
    with pytest.raises(HarnessError, match="blocks"):
        load_test_benchmark(bench, tmp_path)


def test_all_blocks_and_head_equal_a_donor_with_the_base_embeddings(tmp_path: Path):
    """A donor whose input embeddings are the base's (e.g. a LoRA fit): all blocks + head give its logits from token ids."""
    tiny = tiny_module()
    base, donor = tiny.tiny_llama(layers=LAYERS), perturbed(tiny.tiny_llama(layers=LAYERS))
    with torch.no_grad():
        donor.model.embed_tokens.weight.copy_(base.model.embed_tokens.weight)
    handle = tiny.TinyHandle(base, tiny.ByteCodec(), device="cpu")
    ctx = FitContext(seed=0, work_dir=tmp_path, load_fitted=Donor(tiny.TinyHandle(donor, tiny.ByteCodec(), device="cpu")))
    outcome = Graft({"from": "lora", "blocks": LAYERS, "head": True}).fit(handle, [], ctx)
    ids = torch.tensor([[5, 77, 120, 33, 201, 9, 64, 88]])
    with torch.no_grad():
        assert torch.equal(base(input_ids=ids).logits, donor(input_ids=ids).logits)
    embed = base.model.embed_tokens.weight.numel()
    assert outcome.facts["grafted_parameters"] == sum(p.numel() for p in base.parameters()) - embed
