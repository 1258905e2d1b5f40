"""Run a validated benchmark as five phases: plan → fit → generate → score → record.

Each phase reads what the one before produced; nothing reaches back lazily. Every stage is keyed by a
content hash of everything that decides it and stored in the cache as soon as it finishes (generation
per batch), so a rerun reuses what exists and a run killed at any point resumes where it stopped.
``fresh`` ignores stored stages; ``limit`` runs on the first N contexts of each eval dataset.
The jobs live in their own modules: stages (bookkeeping), model_pool, data_plan, fitting,
generating, score_phase; run_record and results turn the outcome into files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import distributed
from harness.config import Benchmark
from harness.data_plan import DataPlanner, GenerationPlan, Plan
from harness.fitting import Fitter
from harness.generating import Generator
from harness.model_pool import ModelPool
from harness.progress import Reporter
from harness.paired import record_comparisons
from harness.results import write_results
from harness.run_record import RecipeOutput, RunRecord, ScoreRow
from harness.score_phase import Scorer
from harness.stages import StageBook
from harness.store import StageCache
from harness.trackers import RunTrackers


@dataclass
class RunOptions:
    results_root: Path
    cache_root: Path
    device: str = "auto"
    fresh: bool = False
    limit: int | None = None


@dataclass
class RunSummary:
    results_dir: Path
    scores: list[ScoreRow]
    timings: dict[str, float] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)


class Runner:
    def __init__(self, bench: Benchmark, options: RunOptions, reporter: Reporter | None = None):
        self.bench = bench
        self.options = options
        self.book = StageBook(StageCache(options.cache_root), options.fresh, reporter or Reporter(quiet=True))
        self.pool = ModelPool(bench, self.book, options.device)
        self.planner = DataPlanner(bench, self.book, self.pool, options.limit)
        self.trackers = RunTrackers.open(bench, self.results_dir, self.book.reporter)  # MLflow, W&B, TensorBoard
        #: in a multi-process launch: (batches this process generated, found stored) in its share
        self.share: tuple[int, int] | None = None

    def run(self) -> RunSummary:
        started = time.perf_counter()
        plan = self.planner.plan()  # 1. plan: every data draw and stage key, disjointness checked
        self.fit(plan)  # 2. fit: train (or find stored) every fit; all processes of a launch together
        generator = Generator(self.bench, self.book, self.pool)
        try:
            if distributed.is_distributed():  # 3a. each process of a launch generates its share of the batches
                self.share = generator.generate_share(plan.generations, distributed.rank(), distributed.world_size())
                distributed.barrier(self.pool.device)
                if not distributed.is_main():  # the main process gathers, scores and writes
                    self.pool.release()
                    return self.summary([])
            generated = {(g.cell.id, g.dataset): generator.generate(g) for g in self.generation_order(plan)}  # 3. generate
        finally:
            generator.close()  # a vLLM worker, if a decoder ran there
        scorer = Scorer(self.bench, self.book, self.pool, plan, self.results_dir)
        scores = [row for g in plan.generations for row in scorer.score(g, generated[(g.cell.id, g.dataset)])]  # 4. score
        self.pool.release()
        record = self.record(plan, generated, scores, scorer)
        if self.bench.baselines:  # every cell vs each of the benchmark's baselines, paired over prompts
            with self.book.timed("compare"):
                record.comparisons = record_comparisons(record)
        self.book.timings["total"] = time.perf_counter() - started
        write_results(self.results_dir, record)  # 5. record
        self.trackers.record(record)  # then mirrored to the benchmark's trackers (a failing one only warns)
        return self.summary(scores)

    def fit(self, plan: Plan | None = None) -> Plan:
        """The fit phase alone (``harness run --fit-only``): every fit of the benchmark stored."""
        plan = plan or self.planner.plan()
        fitter = Fitter(self.book, self.pool, self.options.fresh, self.trackers.log_curve)
        for fit in plan.fits.values():
            fitter.ensure(fit)
        return plan

    def generation_order(self, plan: Plan) -> list[GenerationPlan]:
        """The planned generations, those of the model in memory first (a load saved); results keep plan order."""
        held = self.pool.holds()
        return sorted(plan.generations, key=lambda g: (g.cell.model, g.fit.weights_key) != held)

    @property
    def results_dir(self) -> Path:
        name = self.bench.name if not self.options.limit else f"{self.bench.name}-limit{self.options.limit}"
        return self.options.results_root / name

    def record(self, plan: Plan, generations: dict[tuple[str, str], list[dict[str, Any]]], scores: list[ScoreRow], scorer: Scorer) -> RunRecord:
        by_cell: dict[str, list[dict[str, Any]]] = {}
        for g in plan.generations:
            by_cell.setdefault(g.cell.id, []).extend(generations[(g.cell.id, g.dataset)])
        cells = {g.cell.id: g.cell for g in plan.generations}
        recipes = []
        for (model, recipe_key), fit in plan.fits.items():
            if fit.samples is None or not any(c.model == model and c.recipe == recipe_key for c in self.bench.cells):
                continue
            curves = self.book.cache.get("curves", fit.key) or []
            self._warn_logging_cadence(fit)
            recipes.append(RecipeOutput(model, recipe_key, fit.samples, fit.heldout, curves))
        return RunRecord(
            bench=self.bench, limit=self.options.limit, fresh=self.options.fresh, device=self.pool.device_name,
            cache_dir=str(self.book.cache.root), data=plan.data, models=self.pool.facts, disjointness=plan.disjointness, fits=plan.fit_settings,
            stage_keys=self.book.keys, computed=self.book.computed, reused=self.book.reused, timings=self.book.timings,
            scores=scores, seed_spread=scorer.seed_spread, generations=[(cells[c], r) for c, r in by_cell.items()],
            recipes=recipes, codecs=dict(self.pool.codecs), artifacts=dict(scorer.artifacts),
        )  # fmt: skip

    def _warn_logging_cadence(self, fit: Any) -> None:
        logged = (self.book.cache.get("fit", fit.key) or {}).get("logged_with")
        if logged is not None and logged != fit.recipe.logging_params():
            self.book.reporter.log(
                f"recipe {fit.recipe.key}: the stored fit was logged with {logged}; its curves.csv shows that "
                "cadence (logging params do not retrain a fit; --fresh does)"
            )

    def summary(self, scores: list[ScoreRow]) -> RunSummary:
        book = self.book
        return RunSummary(self.results_dir, scores, dict(book.timings), dict(book.computed), dict(book.reused))


def describe_counts(summary: RunSummary) -> str:
    stages = sorted(set(summary.computed) | set(summary.reused))
    parts = [f"{s} {summary.computed.get(s, 0)} run/{summary.reused.get(s, 0)} reused" for s in stages]
    return ", ".join(parts)
