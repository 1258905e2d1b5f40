"""curves.png lays out the panels of the paper's Figure 2 from whatever columns a recipe logged."""

from __future__ import annotations

from harness.curve_plot import panels_for, plot_curves

FULL = [
    {"step": 0, "epoch": 0.0, "heldout_loss": 3.0, "heldout_entropy": 2.5, "greedy_ttr": 0.3},
    {"step": 2, "epoch": 1.0, "train_loss": 2.0, "heldout_loss": 3.4, "heldout_entropy": 1.9, "greedy_ttr": 0.5},
]


def test_panels_follow_the_figure():
    assert panels_for(FULL) == [
        ("loss (nats / token)", ["train_loss", "heldout_loss"]),
        ("held-out entropy (nats)", ["heldout_entropy"]),
        ("greedy TTR (held-out contexts)", ["greedy_ttr"]),
    ]


def test_only_logged_columns_get_panels_and_extras_get_their_own():
    rows = [{"step": 1, "epoch": 1.0, "train_loss": 2.0, "lr": 1e-3}, {"step": 2, "epoch": 2.0, "train_loss": 1.0, "lr": None}]
    assert panels_for(rows) == [("loss (nats / token)", ["train_loss"]), ("lr", ["lr"])]
    assert panels_for([]) == []


def test_plot_is_a_png():
    png = plot_curves(FULL, "m / r")
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_curves([], "empty") is None
