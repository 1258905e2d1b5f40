"""``lm-eval``: capability retention — the evaluated (fitted) model's score on lm-evaluation-harness tasks.

The paper reports that hyperfitted models keep their benchmark ability; this metric measures it in the same
run: lm-eval's ``HFLM`` wraps the evaluated model's own module and tokenizer in-process (no second load, no
hub), runs the named tasks, and reports one lm-eval metric (``acc`` by default) as one value per metric entry.

It reads none of the generations: every cell of one fitted model (each decoder) gets the same value, and its
result is cached under the weights' identity (``MetricContext.model_key``) so decoders of one fit run lm-eval
once. Task files are part of the score key (:meth:`LMEvalTasks.input_fingerprint`): editing a task YAML or its
data recomputes the score. ``benchmarks/tasks/`` ships an offline multiple-choice task
(``hyperfit_simple_facts``). Needs ``pip install 'hyperfit-harness[lmeval]'``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Iterator

from harness.api import InputError, Metric, Param, atomic_write_json, content_key, did_you_mean, log

DISTRIBUTION = "lm-eval"


def lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return ""


def folder_digest(folder: Path) -> str:
    """sha256 over every file under ``folder`` (relative name and bytes, sorted; caches and hidden files skipped)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        data = path.read_bytes()
        digest.update(str(relative.as_posix()).encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


class LMEvalTasks(Metric):
    name = "lm-eval"
    description = "Capability retention: the evaluated model's lm-evaluation-harness score on named tasks (ignores the generations)."
    version = "1"
    level = "corpus"
    higher_is_better = True
    requires: ClassVar[tuple[str, ...]] = ()
    requires_packages = (DISTRIBUTION,)
    #: the value does not depend on the generations: resampling them tells nothing (paired comparisons give a point)
    max_bootstrap = 0
    definition = (
        "The evaluated (fitted) model's score on lm-evaluation-harness tasks, run in-process on its own weights "
        "and tokenizer (lm-eval's HFLM, the tokenizer's own special-token rule): for each task in `tasks` "
        "(looked up in `include_path` first, then among lm-eval's bundled tasks), lm-eval's aggregate of `metric` "
        "over the task's first `limit` documents (all when unset) with `num_fewshot` examples (the task's own "
        "when unset); for several tasks, the unweighted mean of their values. For a multiple-choice task, acc = "
        "the share of items whose gold choice has the highest log-likelihood given the query; acc_norm divides "
        "each log-likelihood by the choice's length in characters. The generations are not read: every decoder of one "
        "fitted model gets the same value. Interval: value ± 1.96·stderr, the stderr from the per-item values "
        "lm-eval logs (sd/√n; several tasks: √(Σ stderr²)/tasks), clipped to the range of the item values (acc: [0, 1]); a "
        "metric without per-item values has none (a point)."
    )
    params = (
        Param("tasks", list, help="lm-eval task (or group) names, e.g. [hyperfit_simple_facts]"),
        Param("include_path", str, default=None,
              help="a folder of task YAMLs (relative to the working directory), searched before lm-eval's own tasks"),
        Param("metric", str, default="acc", help="the lm-eval metric reported (acc, acc_norm, exact_match, ...)"),
        Param("limit", int, default=None, min=1, help="only the first N documents of each task (None: all)"),
        Param("num_fewshot", int, default=None, min=0, help="few-shot examples per item (None: the task's own)"),
        Param("batch_size", int, default=8, min=1, help="requests per forward pass in lm-eval"),
    )  # fmt: skip

    @classmethod
    def config_problems(cls, params: dict[str, Any], train: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        tasks = params.get("tasks")
        if isinstance(tasks, list) and (not tasks or not all(isinstance(t, str) and t for t in tasks)):
            return [("tasks", f"expected a non-empty list of task names, got {tasks!r}")]
        return []

    # ------------------------------------------------------------------ inputs

    def task_folder(self) -> Path | None:
        raw = self.option("include_path")
        if raw is None:
            return None
        folder = Path(str(raw)).expanduser()
        folder = folder if folder.is_absolute() else Path.cwd() / folder
        if not folder.is_dir():
            raise InputError(f"{self.name}: include_path {raw!r} is not a folder ({folder})")
        return folder

    def input_fingerprint(self) -> str:
        """The task names, every file of ``include_path`` and lm-eval's version (its bundled tasks' files)."""
        folder = self.task_folder()
        parts = {"tasks": list(self.option("tasks")), "lm_eval": lm_eval_version(),
                 "include_path": folder_digest(folder) if folder is not None else None}  # fmt: skip
        return content_key("lm-eval-inputs", parts)

    # ------------------------------------------------------------------ scoring

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        return self.evaluation()["value"]

    def own_interval(self, samples: list[dict[str, Any]]) -> dict[str, Any] | None:
        result = self.evaluation()
        stderr = result["stderr"]
        if stderr is None or not math.isfinite(stderr):
            return {"ci_low": result["value"], "ci_high": result["value"],
                    "method": f"lm-eval {self.option('metric')}: no per-item values, no interval"}  # fmt: skip
        low, high = result["value"] - 1.96 * stderr, result["value"] + 1.96 * stderr
        bounds = result.get("item_range")  # a mean of item values cannot leave their range (acc: [0, 1])
        if bounds:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        return {"ci_low": low, "ci_high": high, "method": f"lm-eval {self.option('metric')} ± 1.96·stderr over items"}

    def evaluation(self) -> dict[str, Any]:
        """{"value", "stderr", "tasks": {name: {"value", "stderr", "n"}}}: computed once per instance, and cached
        under the evaluated weights' identity where the runner gives one."""
        memo = getattr(self, "_evaluation", None)
        if memo is not None:
            return memo
        context = self.context
        path = None
        if context.cache_dir is not None and context.model_key is not None:
            settings = {k: self.option(k) for k in ("tasks", "metric", "limit", "num_fewshot", "batch_size")}
            key = content_key("lm-eval", context.model_key, settings, self.input_fingerprint())
            path = Path(context.cache_dir) / "lm-eval" / f"{key}.json"
            if path.is_file():
                self._evaluation = json.loads(path.read_text(encoding="utf-8"))
                return self._evaluation
        result = self.run_tasks()
        if path is not None:
            atomic_write_json(path, result)
        self._evaluation = result
        return result

    def handle(self) -> Any:
        if self.context is None or self.context.model is None:
            raise InputError(f"{self.name} needs the evaluated model, which is only available inside `harness run` "
                             "(harness score has no model)")  # fmt: skip
        handle = self.context.model()
        if getattr(handle.codec, "tokenizer", None) is None:
            raise InputError(f"{self.name} needs a model with a Hugging Face tokenizer (hf-causal-lm, embedded-smollm2); "
                             f"this model's codec is {type(handle.codec).__name__}")  # fmt: skip
        return handle

    def run_tasks(self) -> dict[str, Any]:
        try:
            import lm_eval
            from lm_eval.models.huggingface import HFLM
            from lm_eval.tasks import TaskManager
        except ImportError as exc:
            raise InputError(f"metric {self.name} needs lm-eval: pip install 'hyperfit-harness[lmeval]'") from exc
        handle = self.handle()
        tasks = list(self.option("tasks"))
        manager = self.task_manager(TaskManager, tasks)
        # a copy: lm-eval may set a pad token on the tokenizer it is given; the codec's stays as it is
        log.info("lm-eval %s: tasks %s on the evaluated model", lm_eval_version(), ", ".join(tasks))
        with quiet_lm_eval(), preserved_random_state():  # simple_evaluate seeds Python's, numpy's and torch's generators
            lm = HFLM(pretrained=handle.module, tokenizer=copy.deepcopy(handle.codec.tokenizer), batch_size=self.option("batch_size"))
            output = lm_eval.simple_evaluate(
                model=lm, tasks=tasks, task_manager=manager, limit=self.option("limit"), num_fewshot=self.option("num_fewshot"),
                bootstrap_iters=0, log_samples=True, random_seed=0, numpy_random_seed=1234, torch_random_seed=1234,
                fewshot_random_seed=1234,
            )  # fmt: skip
        if output is None:
            raise InputError(f"{self.name}: lm-eval returned no results")
        return self.summarise(output, tasks)

    def task_manager(self, factory: Any, tasks: list[str]) -> Any:
        """lm-eval's task index: ``include_path`` alone when it holds every named task (fast), else with lm-eval's own."""
        folder = self.task_folder()
        if folder is not None:
            local = factory(include_path=str(folder), include_defaults=False)
            if all(task in local.all_tasks for task in tasks):
                return local
        manager = factory(include_path=str(folder) if folder is not None else None)
        for task in tasks:
            if task not in manager.all_tasks:
                where = f"{folder} or lm-eval's tasks" if folder is not None else "lm-eval's tasks (set include_path for local ones)"
                raise InputError(f'{self.name}: no task "{task}" in {where}' + did_you_mean(task, manager.all_tasks))
        return manager

    def summarise(self, output: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
        metric = self.option("metric")
        per_task: dict[str, dict[str, Any]] = {}
        for task in tasks:
            row = output["results"].get(task, {})
            key = f"{metric},none"
            if key not in row:
                have = sorted(k.split(",")[0] for k in row if "," in k and "_stderr" not in k)
                raise InputError(f'{self.name}: task "{task}" reports no metric "{metric}" (it reports: {", ".join(have) or "nothing"})')
            items = self.item_values(output, task, metric)
            stderr = None
            if items and len(items) > 1:
                mean = sum(items) / len(items)
                stderr = math.sqrt(sum((v - mean) ** 2 for v in items) / (len(items) - 1) / len(items))
            per_task[task] = {"value": float(row[key]), "stderr": stderr, "n": len(items) if items else None,
                              "item_range": [min(items), max(items)] if items else None}  # fmt: skip
        values = [t["value"] for t in per_task.values()]
        ranges = [t["item_range"] for t in per_task.values()]
        errors = [t["stderr"] for t in per_task.values()]
        combined = None if any(e is None for e in errors) else math.sqrt(sum(e * e for e in errors)) / len(errors)
        item_range = None if any(r is None for r in ranges) else [min(r[0] for r in ranges), max(r[1] for r in ranges)]
        return {"value": sum(values) / len(values), "stderr": combined, "item_range": item_range, "metric": metric,
                "tasks": per_task, "lm_eval": lm_eval_version()}  # fmt: skip

    @staticmethod
    def item_values(output: dict[str, Any], task: str, metric: str) -> list[float] | None:
        """The per-item values lm-eval logged for ``task`` (a group: its subtasks' items), or None."""
        samples = output.get("samples") or {}
        if task in samples:
            names = [task]
        else:
            subtasks = set((output.get("group_subtasks") or {}).get(task, []))
            names = [name for name in samples if name in subtasks]
        values: list[float] = []
        for name in names:
            for sample in samples.get(name, []):
                value = sample.get(metric)
                if not isinstance(value, (int, float)):  # bools count as 0/1
                    return None
                values.append(float(value))
        return values or None


@contextlib.contextmanager
def quiet_lm_eval() -> Iterator[None]:
    """lm-eval's progress bars, its notes about an in-process model and its git probe stay out of the run's output.

    Its stderr (file descriptor 2, so subprocesses too) goes to a temporary file; when lm-eval fails, the file's
    last lines are logged beside the error, so nothing needed to diagnose it is lost."""
    loggers = [logging.getLogger(name) for name in ("lm_eval", "lm-eval")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            sink.seek(0)
            tail = sink.read().decode("utf-8", "replace").strip().splitlines()[-20:]
            os.dup2(saved, 2)
            if tail:
                log.warning("lm-eval's output before it failed:\n%s", "\n".join(tail))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


class preserved_random_state:
    """Restores Python's, numpy's and torch's global random states on exit (lm-eval seeds them)."""

    def __enter__(self) -> "preserved_random_state":
        import random

        import numpy as np
        import torch

        self.states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
        return self

    def __exit__(self, *exc: Any) -> None:
        import random

        import numpy as np
        import torch

        random.setstate(self.states[0])
        np.random.set_state(self.states[1])
        torch.random.set_rng_state(self.states[2])
