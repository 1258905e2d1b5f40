"""curves.png: a fit's curve readable at a glance, laid out like the paper's Figure 2.

Panels, left to right, each only when its columns were logged: losses (training and held-out) against
the update step, held-out entropy, greedy TTR on held-out contexts; any other logged column gets a
panel of its own. matplotlib is imported only here, only when a plot is written.
"""

from __future__ import annotations

import io
from typing import Any

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss (nats / token)", ("train_loss", "heldout_loss")),
    ("held-out entropy (nats)", ("heldout_entropy",)),
    ("greedy TTR (held-out contexts)", ("greedy_ttr",)),
)
AXES = ("step", "epoch")


def panels_for(curves: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The panels that have data: the standard ones first, then one per other logged column."""
    present = {k for row in curves for k, v in row.items() if v is not None and k not in AXES}
    out = [(title, [c for c in columns if c in present]) for title, columns in PANELS]
    known = {c for _, columns in PANELS for c in columns}
    out += [(name, [name]) for name in sorted(present - known)]
    return [(title, columns) for title, columns in out if columns]


def plot_curves(curves: list[dict[str, Any]], title: str) -> bytes | None:
    """PNG bytes of the curve (None when matplotlib is missing or nothing was logged)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = panels_for(curves)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=100, squeeze=False)
    for ax, (label, columns) in zip(axes[0], panels):
        for column in columns:
            points = [(row.get("step", i), row[column]) for i, row in enumerate(curves) if row.get(column) is not None]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=column)
        ax.set_xlabel("update step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        if len(columns) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
