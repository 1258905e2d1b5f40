"""The score phase: every metric on every (cell, eval dataset), each score a stored stage.

A score's key holds the generate key, the scored prompt ids, the metric's identity, the bootstrap
settings, the code of the interval computation, and the fit keys of any other recipe the metric reads.
Where several draws per prompt exist, the metric on each draw is kept apart as the seed spread.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path, PurePosixPath
from typing import Any

from harness.api import MetricContext
from harness.code_identity import module_source_hash
from harness.config import Benchmark, Component
from harness.data_plan import GenerationPlan, Plan
from harness.errors import HarnessError, RunError
from harness.model_pool import ModelPool
from harness.run_record import ScoreRow, SpreadRow
from harness.sampling import derive_seed
from harness.scoring import point_value, score_metric
from harness.stages import StageBook
from harness.store import content_key


def artifact_path(path: str) -> str:
    """A metric's artifact path, checked to stay inside the results folder (relative, no ``..``)."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ValueError(f"an artifact path must be relative and inside the results folder, got {path!r}")
    return str(pure)


class Scorer:
    def __init__(self, bench: Benchmark, book: StageBook, pool: ModelPool, plan: Plan, results_dir: Path | None = None):
        self.results_dir = results_dir
        self.bench = bench
        self.book = book
        self.pool = pool
        self.plan = plan
        self.seed_spread: list[SpreadRow] = []
        #: files metrics keep beside their scores (``MetricContext.write_artifact``), by path in the results folder
        self.artifacts: dict[str, bytes] = {}

    def score(self, gen: GenerationPlan, records: list[dict[str, Any]]) -> list[ScoreRow]:
        rows = []
        context = self.metric_context(gen)
        with self.book.reporter.task(f"score {gen.cell.id} on {gen.dataset}", total=len(self.bench.metrics)) as task:
            for done, (metric_key, metric) in enumerate(self.bench.metrics.items(), start=1):
                row, computed = self._score_one(gen, records, metric_key, metric, context)
                rows.append(row)
                if computed:
                    task.update(done)
        return rows

    def metric_context(self, gen: GenerationPlan) -> MetricContext:
        model = gen.cell.model

        def model_for(recipe_key: str) -> Any:
            return self.pool.fitted(model, self.plan.fits[(model, recipe_key)].weights_key)

        return MetricContext(
            train_sequences=gen.fit.train_sequences,
            codec=self.pool.codecs.get(model),
            model=lambda: self.pool.fitted(model, gen.fit.weights_key),
            cache_dir=self.book.cache.root / "features",
            model_key=gen.fit.key,
            model_for=model_for,
            results_dir=self.results_dir,
            cell=gen.cell.id,
            dataset=gen.dataset,
        )

    def _score_one(
        self, gen: GenerationPlan, records: list[dict[str, Any]], metric_key: str, metric: Component, context: MetricContext
    ) -> tuple[ScoreRow, bool]:
        cell = gen.cell
        plugin = metric.instantiate()
        kept: dict[str, bytes] = {}
        plugin.context = dataclasses.replace(context, write_artifact=lambda path, data: kept.__setitem__(artifact_path(path), bytes(data)))
        dependencies = [self.plan.fits[(cell.model, k)].key for k in plugin.recipe_dependencies()]
        key = content_key(
            "score", gen.key, [r["prompt_id"] for r in records], metric.identity(), self.bench.eval.bootstrap, self.bench.seed,
            module_source_hash("harness.scoring"),  # the interval code (harness.stats) is part of every score
            *([dependencies] if dependencies else []),
            *([fingerprint] if (fingerprint := plugin.input_fingerprint()) else []),
        )  # fmt: skip
        self.book.note_key("score", f"{cell.id}/{gen.dataset}/{metric_key}", key)
        computed = False
        stored = self.book.get("score", key)
        if stored is None:
            with self.book.lock("score", key, f"score {cell.id} on {gen.dataset} with {metric_key}"):
                stored = self.book.get("score", key)  # another run on this cache may have stored it meanwhile
                if stored is None:
                    with self.book.timed("score"):
                        stored = self._compute(plugin, gen, metric_key, metric, records)
                    if kept:
                        stored["artifacts"] = {path: base64.b64encode(data).decode("ascii") for path, data in kept.items()}
                    self.book.put("score", key, stored)
                    computed = True
        self.book.count("score", not computed)
        stored = dict(stored)
        for path, data in stored.pop("artifacts", {}).items():
            self.artifacts[path] = base64.b64decode(data)
        per_draw = stored.pop("draws", None)
        if per_draw:
            self.seed_spread.append(SpreadRow(cell.model, cell.recipe, cell.decoder, gen.dataset, metric_key, per_draw))
        return ScoreRow(cell.model, cell.recipe, cell.decoder, gen.dataset, metric_key, **stored), computed

    def _compute(
        self, plugin: Any, gen: GenerationPlan, metric_key: str, metric: Component, records: list[dict[str, Any]]
    ) -> dict[str, Any]:
        seed = derive_seed(self.bench.seed, "bootstrap", metric_key)
        try:
            interval = score_metric(plugin, records, self.bench.eval.bootstrap, seed)
        except HarnessError:
            raise
        except Exception as exc:
            raise RunError(
                f"metric {metric_key} ({metric.plugin}) failed on cell {gen.cell.id}, dataset {gen.dataset}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        stored: dict[str, Any] = {"value": interval.value, "ci_low": interval.ci_low, "ci_high": interval.ci_high,
                                  "n": interval.n, "interval": interval.method, "warning": interval.warning}  # fmt: skip
        draws = sorted({r["sample_idx"] for r in records if "sample_idx" in r})
        if len(draws) > 1:  # seed spread: the metric on each draw's continuations, apart from the CI
            stored["draws"] = [point_value(plugin, [r for r in records if r.get("sample_idx") == k]) for k in draws]
        return stored
