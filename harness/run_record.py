"""A finished run as plain data: what the results folder is written from.

The phases fill a :class:`RunRecord`; :mod:`harness.results` writes it. Neither side knows the other's
internals: the writer never sees the runner, the runner never formats files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from harness.api import Codec
from harness.config import Benchmark, Cell
from harness.sampling import TrainSample


@dataclass(frozen=True)
class ScoreRow:
    model: str
    recipe: str
    decoder: str
    dataset: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    #: how the interval was made: normal (mean ± 1.96·stderr), bootstrap (over prompts), seeds (range over the
    #: metric's own seeds, small samples) or point (no interval)
    interval: str = ""
    #: a sentence the reader must see with the value (small sample); the leaderboard marks the value with †
    warning: str = ""


@dataclass(frozen=True)
class SpreadRow:
    """A metric computed separately on each sampling draw (seed spread, reported apart from the CI)."""

    model: str
    recipe: str
    decoder: str
    dataset: str
    metric: str
    values: list[float]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def sd(self) -> float:
        m = self.mean
        return (sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1)) ** 0.5


SCORE_HEADER = [f.name for f in fields(ScoreRow)]


@dataclass
class RecipeOutput:
    """What one (model, recipe) leaves in ``recipes/<model>__<recipe>/``."""

    model: str
    recipe: str
    train_samples: list[TrainSample]
    heldout_samples: list[TrainSample]
    curves: list[dict[str, float]]


@dataclass
class RunRecord:
    """Everything the results folder and its manifest say about one run."""

    bench: Benchmark
    limit: int | None
    fresh: bool
    device: str
    cache_dir: str
    #: per dataset: content hash and document count
    data: dict[str, dict[str, Any]]
    #: per model: fingerprint, resolved settings, device kind, libraries
    models: dict[str, dict[str, Any]]
    disjointness: dict[str, dict[str, Any]]
    #: per "model/recipe": what the recipe's "auto" params resolved to here (precision)
    fits: dict[str, dict[str, Any]]
    stage_keys: dict[str, dict[str, str]]
    computed: dict[str, int]
    reused: dict[str, int]
    timings: dict[str, float]
    scores: list[ScoreRow]
    seed_spread: list[SpreadRow] = field(default_factory=list)
    #: per cell, in matrix order: the cell and its records over every eval dataset
    generations: list[tuple[Cell, list[dict[str, Any]]]] = field(default_factory=list)
    recipes: list[RecipeOutput] = field(default_factory=list)
    #: the codec of each model that generated, for pictures of image generations
    codecs: dict[str, Codec] = field(default_factory=dict)
    #: files metrics keep beside their scores, by path inside the results folder
    artifacts: dict[str, bytes] = field(default_factory=dict)
    #: every cell against each of the benchmark's baselines (harness.paired.Comparison), empty without baselines
    comparisons: list[Any] = field(default_factory=list)
