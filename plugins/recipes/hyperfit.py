"""``hyperfit``: the paper's recipe — full fine-tune to near-zero training loss on a tiny dataset.

Defaults follow the paper (Carlsson et al., ICLR 2025), not the official code: Adam with weight decay 0,
constant lr 1e-6, batch 8, 20 epochs over 2000 sequences of 256 tokens (5000 updates), next-token loss
over every position, dropout off. Data order is a seeded permutation per epoch; an incomplete last batch
is dropped (as the official code's DataLoader does).
"""

from __future__ import annotations

from harness.api import FitContext, ModelHandle, Recipe
from harness.params import Param


def disable_dropout(module: object) -> None:
    """Set every dropout probability to 0 (modules and config), as the paper's code does for ImageGPT."""
    import torch

    for sub in module.modules():  # type: ignore[attr-defined]
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0
        for attr in ("attention_dropout", "dropout", "hidden_dropout"):
            value = getattr(sub, attr, None)
            if isinstance(value, float):
                setattr(sub, attr, 0.0)
    config = getattr(module, "config", None)
    if config is not None:
        for attr in ("attention_dropout", "hidden_dropout", "embd_pdrop", "resid_pdrop", "attn_pdrop", "dropout"):
            if isinstance(getattr(config, attr, None), float):
                setattr(config, attr, 0.0)


class Hyperfit(Recipe):
    name = "hyperfit"
    description = "Full fine-tune with Adam (wd 0), constant lr, fixed epochs, dropout off (paper defaults)."
    version = "1"
    trains = True
    train_defaults = {"samples": 2000, "tokens": 256}
    params = (
        Param("lr", float, default=1e-6, min=0.0, exclusive_min=True, help="constant learning rate"),
        Param("batch_size", int, default=8, min=1, help="sequences per update"),
        Param("epochs", int, default=20, min=1, help="passes over the training sequences"),
        Param("optimizer", str, default="adam", choices=("adam", "adamw"), help="adam = paper; adamw for comparison"),
        Param("weight_decay", float, default=0.0, min=0.0, help="0 in the paper (the official code's AdamW used 0.01)"),
        Param("dropout", bool, default=False, help="keep the model's dropout on (the paper turns it off)"),
    )

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> None:
        import torch

        cfg = self.config
        module = handle.module
        device = next(module.parameters()).device
        torch.manual_seed(ctx.seed)
        if not cfg["dropout"]:
            disable_dropout(module)
        data = torch.tensor(sequences, dtype=torch.long)
        optim_cls = torch.optim.Adam if cfg["optimizer"] == "adam" else torch.optim.AdamW
        optimizer = optim_cls(module.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        order_rng = torch.Generator().manual_seed(ctx.seed)
        per_epoch = len(sequences) // cfg["batch_size"]
        total = per_epoch * cfg["epochs"]
        step = 0
        module.train()
        try:
            for epoch in range(1, cfg["epochs"] + 1):
                order = torch.randperm(len(sequences), generator=order_rng)
                losses = []
                for b in range(per_epoch):
                    batch = data[order[b * cfg["batch_size"] : (b + 1) * cfg["batch_size"]]].to(device)
                    loss = module(input_ids=batch, labels=batch).loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    losses.append(float(loss.detach()))
                    ctx.progress(step, total, {"epoch": epoch, "loss": losses[-1]})
                ctx.curve({"step": step, "epoch": epoch, "train_loss": sum(losses) / len(losses)})
        finally:
            module.eval()
            optimizer.zero_grad(set_to_none=True)
            del optimizer
