"""The committed reference results say what the docs claim (re-run the benchmark to refresh them)."""

from __future__ import annotations

import csv
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "results"


def curve(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_quickstart_curve_shows_hyperfitting():
    """Training loss below 0.2 while held-out loss ends above where it started (the paper's Figure 2)."""
    rows = curve(RESULTS / "quickstart" / "recipes" / "smollm2__hyperfit" / "curves.csv")
    assert rows[0]["step"] == "0" and rows[0]["heldout_loss"]
    assert float(rows[-1]["train_loss"]) < 0.2
    assert float(rows[-1]["heldout_loss"]) > float(rows[0]["heldout_loss"])
    assert float(rows[-1]["greedy_ttr"]) > float(rows[0]["greedy_ttr"])
    assert (RESULTS / "quickstart" / "recipes" / "smollm2__hyperfit" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_ablation_results_are_committed():
    for name in ("ablation-data-size", "ablation-shuffle", "ablation-domain"):
        assert (RESULTS / name / "leaderboard.md").is_file(), name
        assert (RESULTS / name / "manifest.json").is_file(), name
