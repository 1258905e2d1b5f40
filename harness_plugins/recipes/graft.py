"""``graft``: the base model with its last N transformer blocks (optionally its final norm and head) taken from
another recipe's fit of the same model — "is hyperfitting a late-stage change?" without training anything.

The recipe names the fit it reads with ``from`` (a recipe of the same benchmark); the runner fits that recipe
first, hands this one a separate copy of the model with those weights (``FitContext.load_fitted``) and keys
this fit by that fit's key, so the graft follows any change to the donor. The grafted weights are stored like
any fit's.

What is copied, exactly (the pinned definition):

* **blocks**: every parameter and persistent buffer whose path lies inside one of the last ``blocks``
  entries of the model's transformer-block list (the ``ModuleList`` with ``num_hidden_layers`` entries:
  ``model.layers`` in Llama, ``transformer.h`` in GPT-2).
* **head** (``head: true``): every parameter and persistent buffer outside the block list that does not
  belong to an embedding module (``torch.nn.Embedding``: token and position embeddings), plus the output
  head's weight (``get_output_embeddings()``): the final norm and the head. With tied embeddings (the head
  *is* the input embedding matrix, e.g. SmolLM2, GPT-2) the head cannot be grafted without the input
  embeddings: the shared matrix is copied (so the input embeddings change too), a warning is logged and
  the facts say ``tied_embeddings: true``. With ``head: false`` a tied matrix is never touched.
* Everything else keeps the base (loader's) weights.
"""

from __future__ import annotations

from typing import Any

from harness.api import FitContext, FitOutcome, InputError, ModelHandle, Param, Recipe, log


def block_list(module: Any, count: int) -> tuple[str, Any]:
    """(path, module) of the model's transformer-block list: the first ``ModuleList`` of ``count`` entries."""
    import torch

    for path, sub in module.named_modules():
        if isinstance(sub, torch.nn.ModuleList) and len(sub) == count:
            return path, sub
    raise InputError(f"graft: found no list of {count} transformer blocks in {type(module).__name__}")


def block_count(module: Any) -> int:
    config = getattr(module, "config", None)
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(config, attr, None), int):
            return getattr(config, attr)
    raise InputError(f"graft: cannot tell how many blocks {type(module).__name__} has (no num_hidden_layers/n_layer)")


def tied_embeddings(module: Any) -> bool:
    """Whether the output head's weight is the input embedding matrix (one tensor)."""
    get_in, get_out = getattr(module, "get_input_embeddings", None), getattr(module, "get_output_embeddings", None)
    if get_in is None or get_out is None:
        return False
    inp, out = get_in(), get_out()
    if inp is None or out is None or getattr(out, "weight", None) is None:
        return False
    return out.weight is inp.weight or out.weight.data_ptr() == inp.weight.data_ptr()


def graft_names(module: Any, blocks: int, head: bool) -> tuple[list[str], list[int], bool]:
    """The state-dict names a graft copies (in state-dict order), the block indices, and whether the head is tied.

    See the module docstring for the definition; tied names (``lm_head.weight`` and ``model.embed_tokens.weight``
    for one matrix) are both listed when the matrix is copied."""
    import torch

    total = block_count(module)
    if blocks > total:
        raise InputError(f"graft: blocks {blocks} is more than the model's {total} transformer blocks")
    path, _ = block_list(module, total)
    indices = list(range(total - blocks, total))
    prefixes = tuple(f"{path}.{i}." for i in indices)
    inside_blocks = f"{path}."
    embedding_prefixes = tuple(f"{p}." for p, sub in module.named_modules() if isinstance(sub, torch.nn.Embedding))
    tied = tied_embeddings(module)
    state = module.state_dict()
    chosen = {name for name in state if name.startswith(prefixes)}
    if head:
        chosen |= {name for name in state if not name.startswith(inside_blocks) and not name.startswith(embedding_prefixes)}
        if tied:  # the head is the input embedding matrix: copy it under every name it has
            shared = module.get_output_embeddings().weight.data_ptr()
            chosen |= {name for name, tensor in state.items() if tensor.data_ptr() == shared}
    return [name for name in state if name in chosen], indices, tied


class Graft(Recipe):
    name = "graft"
    description = "The base model with its last N blocks (and optionally the final norm and head) from another recipe's fit."
    version = "1"
    trains = True  # it makes weights of its own (stored as a fit), from the fit it reads; no optimiser runs
    #: a ``train:`` block is not needed (the graft reads no sequences); where given, nothing is held out
    train_defaults = {"samples": 2000, "tokens": 256, "heldout": 0}
    #: read by the config check: this recipe may be written without a ``train:`` block
    needs_training_data = False
    params = (
        Param("from", str, help="the recipe (of the same benchmark) whose fitted weights are grafted"),
        Param("blocks", int, min=1, help="how many of the last transformer blocks are taken from that fit"),
        Param("head", bool, default=False,
              help="also take the final norm and the output head (tied embeddings: the shared matrix; see docs/recipes.md)"),
    )  # fmt: skip

    def recipe_dependencies(self) -> tuple[str, ...]:
        return (self.option("from"),)

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> FitOutcome:
        import torch

        source = self.option("from")
        if ctx.load_fitted is None:
            raise InputError(f"recipe graft reads the fit of {source!r}, but this harness gives recipes no other fits")
        donor = ctx.load_fitted(source)
        module = handle.module
        names, indices, tied = graft_names(module, self.option("blocks"), self.option("head"))
        if tied and self.option("head"):
            log.warning("graft: the model ties its output head to the input embeddings; head: true copies the shared "
                        "matrix, so the input embeddings are grafted too")  # fmt: skip
        mine, theirs = module.state_dict(), donor.module.state_dict()
        missing = [n for n in names if n not in theirs or theirs[n].shape != mine[n].shape]
        if missing:
            raise InputError(f"graft: the fit of {source!r} has no tensor {missing[0]!r} of the base model's shape")
        parameters = {p.data_ptr() for p in module.parameters()}
        copied: set[int] = set()
        elements = 0
        with torch.no_grad():
            for name in names:
                target = mine[name]
                target.copy_(theirs[name].to(device=target.device, dtype=target.dtype))
                if target.data_ptr() in parameters and target.data_ptr() not in copied:  # a tied matrix counts once
                    copied.add(target.data_ptr())
                    elements += target.numel()
        del donor
        module.eval()
        facts: dict[str, Any] = {
            "grafted_from": source,
            "grafted_blocks": indices,
            "grafted_head": bool(self.option("head")),
            "tied_embeddings": tied,
            "grafted_parameter_names": names,
            "grafted_parameters": elements,
            "total_parameters": sum(p.numel() for p in module.parameters()),
        }
        return FitOutcome(steps=0, facts=facts)
