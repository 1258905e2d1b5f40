"""The fit phase: train each planned (model, recipe) whose fit is not stored yet, and store it.

A fit is stored as its weights (a cache directory), its curve rows and its info (seconds, sequences,
the recipe's :class:`FitOutcome`, the logging params it was logged with). In a multi-process launch
every process trains together and the main one stores.
"""

from __future__ import annotations

import shutil
from typing import Any, Callable

from harness import distributed
from harness.api import FitContext, FitOutcome, derive_seed
from harness.data_plan import FitPlan
from harness.errors import HarnessError, RunError
from harness.model_pool import ModelPool
from harness.stages import StageBook


#: where each curve row also goes as the fit logs it: (model, recipe key, row), e.g. the run's trackers
CurveSink = Callable[[str, str, dict[str, float]], None]


class Fitter:
    def __init__(self, book: StageBook, pool: ModelPool, fresh: bool, curve_sink: CurveSink | None = None):
        self.book = book
        self.pool = pool
        self.fresh = fresh
        self.curve_sink = curve_sink

    def ensure(self, fit: FitPlan) -> None:
        """Make the fit's weights exist in the cache: reuse them, wait for another run's, or train now."""
        if not fit.trains:
            return
        if self.book.fit_stored(fit.key):
            self.book.count("fit", True)
            return
        with self.book.lock("fit", fit.key, f"fit {fit.model}/{fit.recipe.key}"):
            if self.book.fit_stored(fit.key):  # another run stored it while we waited
                self.book.count("fit", True)
                return
            self.train(fit)

    def train(self, fit: FitPlan) -> None:
        samples = fit.samples or []  # none for a recipe that only combines the fits it reads (a graft)
        seed = fit.data_seed if fit.data_seed is not None else derive_seed(0, "fit", fit.key)
        recipe = fit.recipe
        handle = self.pool.for_training(fit.model)
        curves: list[dict[str, float]] = []
        work = self.book.cache.root / "work" / fit.key
        if self.fresh and distributed.is_main():
            shutil.rmtree(work, ignore_errors=True)  # --fresh: no resuming from an earlier checkpoint either
        work.mkdir(parents=True, exist_ok=True)
        with self.book.timed("fit"), self.book.reporter.task(f"fit {fit.model}/{recipe.key}", total=1) as task:
            ctx = FitContext(
                seed=seed,
                work_dir=work,
                progress=lambda done, total, info: task.update(done, info, total=total),
                curve=self._curve(fit, curves),
                heldout=[s.token_ids for s in fit.heldout],
                load_fitted=lambda name: self.pool.separate(fit.model, fit.read(name).weights_key),
            )
            try:
                outcome = recipe.instantiate().fit(handle, [s.token_ids for s in samples], ctx)
            except HarnessError:
                raise
            except Exception as exc:
                raise RunError(f"recipe {recipe.key} ({recipe.plugin}) failed on model {fit.model}: {type(exc).__name__}: {exc}") from exc
            seconds = task.elapsed()
        self.book.count("fit", False)
        if distributed.is_main():  # the main process stores the fit; the others only helped to train it
            staging = self.book.cache.staging_directory("fits", fit.key)
            handle.save_weights(staging)
            self.book.cache.commit_directory("fits", fit.key, staging)
            self.book.put("curves", fit.key, curves)
            info = {"seconds": seconds, "sequences": len(samples), "logged_with": recipe.logging_params()}
            self.book.put("fit", fit.key, info | outcome_facts(outcome))
        if distributed.sharding():
            # a sharded fit leaves each process its shards only: every process reads the stored weights back
            self.pool.release()
            distributed.barrier(self.pool.device)  # once the main process has stored them
        else:
            self.pool.adopt(fit.model, fit.key, handle)  # data parallel: every process holds the same weights

    def _curve(self, fit: FitPlan, curves: list[dict[str, float]]) -> Callable[[dict[str, float]], None]:
        """The recipe's curve callback: each row is kept for the cache and, live, handed to the curve sink."""
        if self.curve_sink is None:
            return curves.append
        sink = self.curve_sink

        def log(row: dict[str, float]) -> None:
            curves.append(row)
            sink(fit.model, fit.recipe.key, dict(row))

        return log


def outcome_facts(outcome: Any) -> dict[str, Any]:
    """A recipe's report as stored: a :class:`FitOutcome`'s JSON (a plain dict is accepted too)."""
    if isinstance(outcome, FitOutcome):
        return outcome.to_json()
    return dict(outcome) if isinstance(outcome, dict) else {}
