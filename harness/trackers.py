"""Optional experiment trackers: mirror a run into MLflow, Weights & Biases or TensorBoard, offline.

The results folder stays the record of a run; a tracker is a second view of it, for people who compare
runs in their tracker's UI. Each one gets, in the main process only:

* the fit curves as the fit logs them (``curve/<model>__<recipe>/<column>`` at the row's ``step``); a fit
  reused from the cache has its stored curve logged when the run is recorded instead;
* the final scores, one metric per (cell, dataset, metric): ``score/<cell>/<dataset>/<metric>``;
* the manifest (an artifact, the config, or a text panel, as the tracker has it);
* a table of samples: the first N continuations of each eval dataset, per cell.

Configured in the benchmark YAML (``trackers: {mlflow: {...}, wandb: {...}, tensorboard: {...}}``, checked
by :mod:`harness.config`, never part of a stage key) or by ``harness run --tracker NAME``. Every tracker
writes locally (an MLflow file store, a W&B offline run, TensorBoard event files); none syncs over a network.
A missing package stops the run before anything heavy with the extra to install; a tracker that fails
mid-run is reported and switched off, and the run (and its results folder) goes on.

Importing this module imports none of the trackers' packages: each is imported when its tracker starts.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping, Protocol, Sequence

from harness import __version__, distributed
from harness.errors import InputError
from harness.params import Param

if TYPE_CHECKING:  # pragma: no cover
    from harness.config import Benchmark
    from harness.progress import Reporter
    from harness.run_record import RunRecord, ScoreRow

#: columns of every samples table, in order
SAMPLE_COLUMNS = ("prompt_id", "dataset", "context", "output", "reference")
_SAMPLES = Param("samples", int, default=5, min=0,
                 help="continuations logged per cell and eval dataset, as a table (0: none)")  # fmt: skip


@dataclass(frozen=True)
class RunInfo:
    """What a tracker names its run after."""

    benchmark: str
    #: the results folder's name: the benchmark's, or ``<benchmark>-limitN`` for a smoke run
    run_name: str
    results_dir: Path
    seed: int
    benchmark_file: str
    harness_version: str = __version__


class Tracker(Protocol):
    """One tracker's side of a run. The runner never calls these directly: :class:`RunTrackers` does, so a
    failing tracker is reported and dropped instead of failing the run."""

    name: ClassVar[str]

    def start(self, info: RunInfo) -> None: ...

    def log_curve(self, model: str, recipe: str, row: Mapping[str, float]) -> None: ...

    def log_scores(self, rows: Sequence["ScoreRow"]) -> None: ...

    def log_manifest(self, manifest: Mapping[str, Any]) -> None: ...

    def log_samples(self, cell: str, rows: Sequence[Mapping[str, str]]) -> None: ...

    def finish(self, ok: bool = True) -> None: ...

    def location(self) -> str:
        """Where this run can be read, for the line printed when it finishes."""
        ...


class _Base:
    """What the three trackers share: their options, the results root their defaults live under."""

    name: ClassVar[str]
    #: the module imported to check the tracker can run; the extra of the same name installs it
    module: ClassVar[str]
    #: environment defaults set before that import (telemetry off: runs stay local)
    env_defaults: ClassVar[dict[str, str]] = {}
    params: ClassVar[tuple[Param, ...]]

    def __init__(self, options: Mapping[str, Any], results_dir: Path):
        self.options = dict(options)
        self.results_dir = Path(results_dir)
        self.samples = int(self.options.get("samples", _SAMPLES.default))

    def option_path(self, key: str, default: Path) -> Path:
        """A folder option: as given (relative to the working directory, like ``--results``) or the default."""
        value = self.options.get(key)
        return Path(value).expanduser().resolve() if value else default.resolve()


# --------------------------------------------------------------------------- MLflow


class MLflowTracker(_Base):
    """An MLflow run in a local store (default ``file:RESULTS_ROOT/mlruns``; experiment = the benchmark)."""

    name = "mlflow"
    module = "mlflow"
    env_defaults = {"MLFLOW_DISABLE_TELEMETRY": "true"}
    params = (
        Param("tracking_uri", str, default=None,
              help="MLflow store (default file:RESULTS_ROOT/mlruns, a local file store; a plain path is one too)"),
        Param("experiment", str, default=None, help="experiment name (default: the benchmark's name)"),
        _SAMPLES,
    )  # fmt: skip

    def start(self, info: RunInfo) -> None:
        uri = self.options.get("tracking_uri") or (self.results_dir.parent / "mlruns").resolve().as_uri()
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", uri):
            uri = Path(uri).expanduser().resolve().as_uri()  # a plain folder: a file store there
        if uri.startswith("file:"):
            # MLflow 3 keeps the file store in maintenance mode behind this opt-in; it is the offline store
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment = self.options.get("experiment") or info.benchmark
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(self.experiment)
        tags = {"benchmark": info.benchmark, "benchmark_file": info.benchmark_file, "results_dir": str(info.results_dir),
                "harness_version": info.harness_version, "seed": str(info.seed)}  # fmt: skip
        self.run_id = self.client.create_run(experiment_id, run_name=info.run_name, tags=tags).info.run_id

    def _log_metrics(self, values: Iterable[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(_metric_name(key), value, now, step) for key, value, step in values]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log_curve(self, model: str, recipe: str, row: Mapping[str, float]) -> None:
        step = int(row["step"])
        self._log_metrics((f"curve/{model}__{recipe}/{k}", v, step) for k, v in row.items() if k != "step")

    def log_scores(self, rows: Sequence["ScoreRow"]) -> None:
        self._log_metrics((score_name(r), float(r.value), 0) for r in rows)

    def log_manifest(self, manifest: Mapping[str, Any]) -> None:
        from mlflow.entities import Param as MlflowParam

        self.client.log_dict(self.run_id, dict(manifest), "manifest.json")
        flat = _flatten(manifest.get("config", {}), "config")  # the resolved benchmark, searchable as params
        params = [MlflowParam(_metric_name(k)[:250], v[:6000]) for k, v in flat.items()]
        for start in range(0, len(params), 100):  # MLflow's batch limit for params
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log_samples(self, cell: str, rows: Sequence[Mapping[str, str]]) -> None:
        table = {column: [r[column] for r in rows] for column in SAMPLE_COLUMNS}
        with warnings.catch_warnings():  # MLflow's own pandas dtype deprecation notices, nothing of ours
            warnings.simplefilter("ignore")
            self.client.log_table(self.run_id, data=table, artifact_file=f"samples/{cell}.json")

    def finish(self, ok: bool = True) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")

    def location(self) -> str:
        return f"{self.uri} (experiment {self.experiment!r}, run {self.run_id}; `mlflow ui --backend-store-uri {self.uri}`)"


# --------------------------------------------------------------------------- Weights & Biases


class WandbTracker(_Base):
    """A W&B run in offline mode under ``DIR/wandb/offline-run-*`` (default DIR: the results root);
    ``wandb sync`` uploads it later, if ever."""

    name = "wandb"
    module = "wandb"
    env_defaults = {"WANDB_ERROR_REPORTING": "false"}
    params = (
        Param("project", str, default=None, help="project name (default: the benchmark's name)"),
        Param("dir", str, default=None, help="folder the offline run is written under (default: the results root)"),
        Param("tags", list, default=None, help="tags for the run"),
        _SAMPLES,
    )  # fmt: skip

    def start(self, info: RunInfo) -> None:
        import wandb

        folder = self.option_path("dir", self.results_dir.parent)
        folder.mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        self.defined: set[str] = set()
        self.run = wandb.init(
            project=self.options.get("project") or info.benchmark, name=info.run_name, dir=str(folder),
            mode="offline", reinit="create_new", tags=self.options.get("tags"),
            config={"benchmark": info.benchmark, "seed": info.seed, "benchmark_file": info.benchmark_file,
                    "harness_version": info.harness_version},
            settings=wandb.Settings(console="off", silent=True),  # the harness's own output stays as it is
        )  # fmt: skip

    def log_curve(self, model: str, recipe: str, row: Mapping[str, float]) -> None:
        prefix = f"curve/{model}__{recipe}"
        if prefix not in self.defined:  # each fit's curve on its own x axis: its training step
            self.run.define_metric(f"{prefix}/step")
            self.run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/step")
            self.defined.add(prefix)
        self.run.log({f"{prefix}/{k}": v for k, v in row.items()})

    def log_scores(self, rows: Sequence["ScoreRow"]) -> None:
        self.run.summary.update({score_name(r): float(r.value) for r in rows})

    def log_manifest(self, manifest: Mapping[str, Any]) -> None:
        self.run.config.update({"manifest": dict(manifest)}, allow_val_change=True)

    def log_samples(self, cell: str, rows: Sequence[Mapping[str, str]]) -> None:
        table = self.wandb.Table(columns=list(SAMPLE_COLUMNS), data=[[r[c] for c in SAMPLE_COLUMNS] for r in rows])
        self.run.log({f"samples/{cell}": table})

    def finish(self, ok: bool = True) -> None:
        self.run.finish(exit_code=0 if ok else 1)

    def location(self) -> str:
        folder = getattr(self.run.settings, "sync_dir", None) or self.run.dir
        return f"offline run {folder} (upload with `wandb sync {folder}`)"


# --------------------------------------------------------------------------- TensorBoard


class TensorBoardTracker(_Base):
    """TensorBoard event files in ``LOG_DIR/<run name>/<UTC time>`` (default LOG_DIR: RESULTS_ROOT/tensorboard):
    ``tensorboard --logdir LOG_DIR`` shows every run side by side."""

    name = "tensorboard"
    module = "tensorboard"
    params = (
        Param("log_dir", str, default=None,
              help="the folder `tensorboard --logdir` reads; each run writes its own subfolder "
                   "(default RESULTS_ROOT/tensorboard)"),
        _SAMPLES,
    )  # fmt: skip

    def start(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        base = self.option_path("log_dir", self.results_dir.parent / "tensorboard") / info.run_name
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder, n = base / stamp, 1
        while folder.exists():  # two runs in one second keep separate folders
            n += 1
            folder = base / f"{stamp}-{n}"
        self.log_dir = folder
        self.writer = SummaryWriter(log_dir=str(folder))

    def log_curve(self, model: str, recipe: str, row: Mapping[str, float]) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key != "step":
                self.writer.add_scalar(f"curve/{model}__{recipe}/{key}", value, step)

    def log_scores(self, rows: Sequence["ScoreRow"]) -> None:
        for r in rows:
            self.writer.add_scalar(score_name(r), float(r.value), 0)

    def log_manifest(self, manifest: Mapping[str, Any]) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=False, default=str)
        self.writer.add_text("manifest", "\n".join("    " + line for line in text.splitlines()), 0)  # a code block

    def log_samples(self, cell: str, rows: Sequence[Mapping[str, str]]) -> None:
        lines = ["| " + " | ".join(SAMPLE_COLUMNS) + " |", "|" + "---|" * len(SAMPLE_COLUMNS)]
        lines += ["| " + " | ".join(_cell_text(r[c]) for c in SAMPLE_COLUMNS) + " |" for r in rows]
        self.writer.add_text(f"samples/{cell}", "\n".join(lines), 0)

    def finish(self, ok: bool = True) -> None:
        self.writer.flush()
        self.writer.close()

    def location(self) -> str:
        return f"event files in {self.log_dir} (`tensorboard --logdir {self.log_dir.parent.parent}`)"


#: every tracker by its name in YAML and in ``--tracker``
TRACKERS: dict[str, type[_Base]] = {cls.name: cls for cls in (MLflowTracker, WandbTracker, TensorBoardTracker)}
TRACKER_NAMES = tuple(TRACKERS)


# --------------------------------------------------------------------------- the run's trackers


class RunTrackers:
    """The trackers of one run, called by the runner at its phases; empty (every call a no-op) when the
    benchmark names none or in a helper process of a distributed launch (the main process mirrors the run)."""

    def __init__(self, trackers: Sequence[Tracker] = (), results_dir: Path | None = None, reporter: "Reporter | None" = None):
        self.active: list[Tracker] = list(trackers)
        self.results_dir = results_dir
        self.reporter = reporter
        self.streamed: set[tuple[str, str]] = set()  # fits whose curve went out live in this run
        self.finished = False

    @classmethod
    def open(cls, bench: "Benchmark", results_dir: Path, reporter: "Reporter | None" = None) -> "RunTrackers":
        """Check the packages and start every configured tracker (before the run plans: a missing package or a
        store that cannot be opened shows at once, not after the fits)."""
        configured: dict[str, dict[str, Any]] = getattr(bench, "trackers", None) or {}
        if not configured or not distributed.is_main():
            return cls()
        check_packages(configured)
        trackers = [TRACKERS[name](options, results_dir) for name, options in configured.items()]
        run = cls(trackers, results_dir, reporter)
        info = RunInfo(bench.name, Path(results_dir).name, Path(results_dir), bench.seed, str(bench.path))
        for tracker in list(run.active):
            run._call(tracker, "starting", tracker.start, info)
        atexit.register(run._abandon)  # a run that dies before its record phase still closes its tracker runs
        return run

    def log_curve(self, model: str, recipe: str, row: Mapping[str, Any]) -> None:
        """One curve row as the fit logs it (the Fitter's curve callback)."""
        self.streamed.add((model, recipe))
        if not self.active:
            return
        values = curve_values(row)
        for tracker in list(self.active):
            self._call(tracker, f"logging the curve of {model}/{recipe}", tracker.log_curve, model, recipe, values)

    def record(self, record: "RunRecord") -> None:
        """The recorded run (its results folder written): the stored curves of fits reused from the cache, the
        scores, the manifest, the samples; then each tracker's run is finished."""
        if not self.active:
            self.finish()
            return
        for output in record.recipes:
            if (output.model, output.recipe) not in self.streamed:
                for row in output.curves:
                    self.log_curve(output.model, output.recipe, row)
        manifest = _read_manifest(self.results_dir)
        for tracker in list(self.active):
            self._call(tracker, "logging the scores", tracker.log_scores, list(record.scores))
        for tracker in list(self.active):
            self._call(tracker, "logging the manifest", tracker.log_manifest, manifest)
        for cell, records in record.generations:
            for tracker in list(self.active):
                count = getattr(tracker, "samples", _SAMPLES.default)
                if count:
                    self._call(tracker, f"logging samples of {cell.id}", tracker.log_samples, cell.id, sample_rows(records, count))
        self.finish()

    def finish(self, ok: bool = True) -> None:
        """End every tracker's run (``ok=False``: marked failed); later calls do nothing."""
        if self.finished:
            return
        self.finished = True
        atexit.unregister(self._abandon)
        for tracker in list(self.active):
            if self._call(tracker, "finishing", tracker.finish, ok) and ok and self.reporter is not None:
                self.reporter.log(f"tracker {tracker.name}: {tracker.location()}")
        self.active = []

    def _abandon(self) -> None:
        self.finish(ok=False)

    def _call(self, tracker: Tracker, doing: str, method: Any, *args: Any) -> bool:
        """Call one tracker; a failure is reported once and switches that tracker off, never the run."""
        try:
            method(*args)
            return True
        except Exception as exc:  # noqa: BLE001 -- a tracker must never cost the run its results
            if tracker in self.active:
                self.active.remove(tracker)
            message = (f"warning: tracker {tracker.name} failed while {doing} ({type(exc).__name__}: {exc}); it is off "
                       "for the rest of this run, the results folder is unaffected")  # fmt: skip
            if self.reporter is not None:
                self.reporter.console.print(message, markup=False, highlight=False)
            else:
                print(message, file=sys.stderr)
            if doing != "finishing":
                try:
                    tracker.finish(False)
                except Exception:  # noqa: BLE001 -- already reported
                    pass
            return False


# --------------------------------------------------------------------------- helpers


def check_packages(names: Iterable[str]) -> None:
    """Import each named tracker's package now, before anything heavy runs; one error for all that are missing,
    naming the extras to install."""
    problems, extras = [], []
    for name in names:
        cls = TRACKERS[name]
        for key, value in cls.env_defaults.items():
            os.environ.setdefault(key, value)
        try:
            importlib.import_module(cls.module)
        except ImportError as exc:
            absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == cls.module
            why = "which is not installed" if absent else f"which fails to import ({type(exc).__name__}: {exc})"
            problems.append(f"tracker {name} needs the {cls.module} package, {why}")
            extras.append(name)
    if problems:
        raise InputError("; ".join(problems) + f": pip install 'hyperfit-harness[{','.join(extras)}]'")


def with_trackers(configured: Mapping[str, dict[str, Any]], names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``harness run --tracker NAME``: add each named tracker at its defaults, unless the benchmark configures it."""
    from harness.params import resolve_params

    out = dict(configured)
    for name in names:
        if name not in out:
            out[name] = resolve_params(TRACKERS[name].params, {})[0]
    return out


def score_name(row: "ScoreRow") -> str:
    """The flat metric name of one score: ``score/<model>__<recipe>__<decoder>/<dataset>/<metric>``."""
    return f"score/{row.model}__{row.recipe}__{row.decoder}/{row.dataset}/{row.metric}"


def curve_values(row: Mapping[str, Any]) -> dict[str, float]:
    """A curve row as numbers: ``step`` an int, other numeric columns as floats, anything else left out."""
    out: dict[str, float] = {"step": int(row.get("step", 0))}
    for key, value in row.items():
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def sample_rows(records: Sequence[Mapping[str, Any]], count: int) -> list[dict[str, str]]:
    """The first ``count`` continuations of each eval dataset, in the samples table's columns."""
    seen: dict[str, int] = {}
    rows = []
    for r in records:
        dataset = str(r.get("dataset", ""))
        if seen.get(dataset, 0) >= count:
            continue
        seen[dataset] = seen.get(dataset, 0) + 1
        rows.append({"prompt_id": str(r.get("prompt_id", "")), "dataset": dataset, "context": str(r.get("context_text", "")),
                     "output": str(r.get("output_text", "")), "reference": str(r.get("reference_text", ""))})  # fmt: skip
    return rows


def _metric_name(name: str) -> str:
    """MLflow's allowed characters (letters, digits, ``_ - . / :`` and spaces); anything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./: ]", "_", name)


def _flatten(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}"))
        return out
    return {prefix: value if isinstance(value, str) else json.dumps(value, default=str)}


def _cell_text(value: str) -> str:
    """Text in a one-line markdown table cell."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def _read_manifest(results_dir: Path | None) -> dict[str, Any]:
    """The manifest exactly as the results folder has it (written just before)."""
    if results_dir is None or not (Path(results_dir) / "manifest.json").is_file():
        return {}
    return json.loads((Path(results_dir) / "manifest.json").read_text(encoding="utf-8"))


__all__ = [
    "RunInfo", "Tracker", "MLflowTracker", "WandbTracker", "TensorBoardTracker", "TRACKERS", "TRACKER_NAMES",
    "RunTrackers", "check_packages", "with_trackers", "score_name", "sample_rows", "SAMPLE_COLUMNS",
]  # fmt: skip
