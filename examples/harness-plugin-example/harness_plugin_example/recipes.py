"""``example-sgd``: fine-tune every weight with plain SGD on next-token prediction.

A recipe changes ``handle.module`` in place. The runner hands it the training sequences (token ids, all of
the ``train: {tokens}`` length), a seed, and two callbacks: ``ctx.progress`` for the progress bar and
``ctx.curve`` for one row of ``curves.csv`` per step. The runner stores the fitted weights (through the
handle's ``save_weights``) and reuses them while the recipe's name, version, params and data are unchanged.
"""

from __future__ import annotations

from harness.api import FitContext, hookimpl, ModelHandle, Param, Recipe


class PlainSGD(Recipe):
    name = "example-sgd"
    description = "Full fine-tuning with plain SGD (no momentum) on next-token cross-entropy; shuffled, seeded"
    version = "1"
    train_defaults = {"samples": 16, "tokens": 32}
    params = (
        Param("lr", float, default=0.5, min=0, exclusive_min=True, help="learning rate"),
        Param("steps", int, default=20, min=1, help="optimizer steps"),
        Param("batch_size", int, default=4, min=1, help="sequences per step"),
    )

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> None:
        import torch

        module = handle.module
        device = next(module.parameters()).device
        data = torch.tensor(sequences, dtype=torch.long)
        generator = torch.Generator().manual_seed(ctx.seed)
        optimizer = torch.optim.SGD(module.parameters(), lr=self.option("lr"))
        steps, batch_size = self.option("steps"), min(self.option("batch_size"), len(sequences))
        was_training = module.training
        module.train()
        try:
            order = torch.randperm(len(data), generator=generator)
            cursor = 0
            for step in range(1, steps + 1):
                if cursor + batch_size > len(order):  # a new epoch: reshuffle
                    order, cursor = torch.randperm(len(data), generator=generator), 0
                batch = data[order[cursor : cursor + batch_size]].to(device)
                cursor += batch_size
                loss = module(input_ids=batch, labels=batch).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = loss.item()
                ctx.progress(step, steps, {"loss": value})
                ctx.curve({"step": step, "train_loss": value})
        finally:
            module.train(was_training)


@hookimpl
def harness_register_recipes(register):
    register(PlainSGD)
