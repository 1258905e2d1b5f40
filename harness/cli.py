"""The ``harness`` command line. Heavy modules (torch, pandas) are imported only by commands that need them."""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from harness import __version__
from harness.errors import HarnessError, InputError
from harness.plugin_manager import LoadedPlugins, PluginOptions, load_plugins
from harness.trackers import TRACKER_NAMES


class State:
    """Options shared by all commands; plugins are loaded once, on first use."""

    def __init__(self) -> None:
        self.local_files: list[str] = []
        self.disabled: list[str] = []
        self.strict = False
        self.debug = False
        self._plugins: LoadedPlugins | None = None

    def plugins(self) -> LoadedPlugins:
        if self._plugins is None:
            self._plugins = load_plugins(PluginOptions(tuple(self.local_files), tuple(self.disabled), self.strict))
            for failure in self._plugins.failures:
                click.echo(f"warning: {failure}", err=True)
        return self._plugins


def _collect(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        state = ctx.ensure_object(State)
        if isinstance(value, tuple):
            getattr(state, attr).extend(value)
        elif value:
            setattr(state, attr, True)
        return value

    return callback


def plugin_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Plugin flags accepted both before and after the subcommand name."""
    options = [
        click.option("--plugins", "plugin_files", multiple=True, metavar="FILE.py", expose_value=False,
                     callback=_collect("local_files"), help="Load a local plugin file (repeatable)."),
        click.option("--disable-plugin", multiple=True, metavar="NAME", expose_value=False,
                     callback=_collect("disabled"),
                     help="Skip a plugin by entry-point or registered name (repeatable; also HARNESS_DISABLE_PLUGINS=a,b)."),
        click.option("--strict-plugins", is_flag=True, expose_value=False, callback=_collect("strict"),
                     help="Fail if any plugin fails to import."),
        click.option("--debug", is_flag=True, expose_value=False, callback=_collect("debug"),
                     help="Show tracebacks on errors."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@plugin_options
def cli() -> None:
    """Benchmark hyperfitting and decoding strategies: plugins, YAML benchmarks, cached runs, leaderboards."""


def _state() -> State:
    return click.get_current_context().ensure_object(State)


def _load(paths: tuple[str, ...]) -> list[Any]:
    from harness.config import load_benchmark
    from harness.errors import ConfigError

    registry = _state().plugins().registry
    benches, problems = [], []
    for path in paths:
        try:
            benches.append(load_benchmark(Path(path), registry))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return benches


@cli.command()
@click.argument("benchmarks", nargs=-1, required=True, metavar="BENCHMARK.yaml...")
@plugin_options
def validate(benchmarks: tuple[str, ...]) -> None:
    """Check benchmark files completely (plugins, params, references, sizes) without loading any model."""
    for bench in _load(benchmarks):
        click.echo(
            f"{bench.path}: ok — {len(bench.cells)} cells × {len(bench.eval.datasets)} eval datasets × "
            f"{len(bench.metrics)} metrics"
        )


@cli.command()
@click.argument("benchmarks", nargs=-1, required=True, metavar="BENCHMARK.yaml...")
@click.option("--results", "results_root", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of results/<benchmark>/.")
@click.option("--cache", "cache_root", default=None, type=click.Path(file_okay=False),
              help="Stage cache (default $HARNESS_CACHE or ~/.cache/hyperfit-harness).")
@click.option("--fresh", is_flag=True, help="Recompute every stage instead of reusing stored ones.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Smoke run on the first N contexts per eval dataset (results go to <benchmark>-limitN).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--fit-only", is_flag=True,
              help="Train every fit into the cache and stop (e.g. under accelerate launch); a later run generates.")
@click.option("--tracker", "trackers", multiple=True, type=click.Choice(TRACKER_NAMES),
              help="Mirror the run into an experiment tracker, offline (repeatable; the benchmark's `trackers:` "
                   "settings win, else the defaults: RESULTS/mlruns, RESULTS/wandb, RESULTS/tensorboard).")
@plugin_options
def run(benchmarks: tuple[str, ...], results_root: str, cache_root: str | None, fresh: bool, limit: int | None,
        device: str, quiet: bool, fit_only: bool, trackers: tuple[str, ...]) -> None:  # fmt: skip
    """Run benchmarks: fit, generate, score, and write results/<benchmark>/ plus a leaderboard."""
    from rich.console import Console

    from harness import distributed
    from harness.leaderboard import print_leaderboard
    from harness.progress import Reporter
    from harness.runner import Runner, RunOptions, describe_counts
    from harness.store import default_cache_dir
    from harness.trackers import check_packages, with_trackers

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"--device {device}: use cpu, cuda, cuda:N or auto")
    if distributed.sharding() and not fit_only:
        raise InputError(
            f"a sharded ({distributed.sharding()}) launch only trains: add --fit-only, then generate and score from the "
            "stored fits with one process (`harness run B`, models.M.device_map: auto for a model larger than one GPU) "
            "or a data-parallel launch (configs/accelerate/ddp.yaml)"
        )
    benches = _load(benchmarks)
    for bench in benches:
        if limit and limit > bench.eval.contexts:
            raise InputError(f"--limit {limit} is larger than eval.contexts {bench.eval.contexts} in {bench.path}")
        bench.trackers = with_trackers(bench.trackers, trackers)
        check_packages(bench.trackers)  # a tracker's missing package stops every benchmark here, before any model loads
    cache = Path(cache_root).expanduser() if cache_root else default_cache_dir()
    err = Console(stderr=True)
    for bench in benches:
        options = RunOptions(Path(results_root), cache, device=device, fresh=fresh, limit=limit)
        helper = not distributed.is_main()  # another process of a multi-process launch: it only helps to train
        with Reporter(err, quiet=quiet or helper) as reporter:
            runner = Runner(bench, options, reporter)
            if fit_only:
                runner.fit()
                runner.trackers.finish()  # the curves it trained went out live; no scores to record
            else:
                summary = runner.run()
        if helper:
            if runner.share is not None:  # one line per helper process: its share of the generation
                made, found = runner.share
                err.print(f"{bench.name}: process {distributed.rank()} of {distributed.world_size()} generated "
                          f"{made} batches of its share ({found} found stored)", highlight=False)  # fmt: skip
            continue
        if fit_only:
            trained, reused = runner.book.computed.get("fit", 0), runner.book.reused.get("fit", 0)
            err.print(f"{bench.name}: fits done ({trained} trained, {reused} reused from the cache {cache})", highlight=False)
            continue
        print_leaderboard(summary.results_dir, "rich", Console(width=None if sys.stdout.isatty() else 160))
        if not quiet:
            err.print(
                f"results: {summary.results_dir}  ({summary.timings['total']:.1f}s; {describe_counts(summary)})",
                highlight=False,
            )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_options
def plugins(as_json: bool) -> None:
    """List every registered plugin: kind, source distribution, parameters (a recipe's train: block too), needed packages."""
    loaded = _state().plugins()
    entries = [reg.describe() for reg in loaded.registry]
    if as_json:
        click.echo(json.dumps({"plugins": entries, "failures": loaded.failures}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for header in ("kind", "name", "source", "params", "needs", "description"):
        table.add_column(header, overflow="fold")
    for e in entries:
        # a recipe's `train:` block is a schema like any other: its keys listed as train.KEY with their defaults
        schema = list(e["params"].items()) + [(f"train.{n}", p) for n, p in e.get("train", {}).items()]
        params = ", ".join(f"{n}: {p['type']}" + ("" if p["required"] else f" = {p['default']!r}") for n, p in schema)
        source = f"{e['distribution']} {e['distribution_version']}" if e["distribution"] else e["plugin"]
        needs = ", ".join(e["requires_packages"]) or "-"
        table.add_row(e["kind"].replace("_", " "), e["name"], source, params or "-", needs, e["description"])
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


@cli.command()
@click.argument("results_dir", type=click.Path())
@click.option("--format", "fmt", default="rich", show_default=True, help="rich, md, csv or latex.")
@plugin_options
def leaderboard(results_dir: str, fmt: str) -> None:
    """Print the leaderboard of a results directory."""
    from harness.leaderboard import print_leaderboard

    print_leaderboard(Path(results_dir), fmt)


@cli.command()
@click.argument("results_dir", type=click.Path())
@click.argument("cell_a", metavar="CELL_A")
@click.argument("cell_b", metavar="CELL_B")
@click.option("--dataset", default=None, help="Only this eval dataset.")
@click.option("--metric", "metric_name", default=None, help="Only this metric (its name in the benchmark).")
@click.option("--format", "fmt", default="rich", show_default=True, help="rich, md or json.")
@click.option("--bootstrap", default=None, type=click.IntRange(min=0),
              help="Paired bootstrap resamples (default: the run's eval.bootstrap; capped per metric, e.g. MAUVE 50).")
@plugin_options
def compare(results_dir: str, cell_a: str, cell_b: str, dataset: str | None, metric_name: str | None, fmt: str,
            bootstrap: int | None) -> None:  # fmt: skip
    """Compare two cells (model__recipe__decoder) on their shared prompts: B − A with a paired bootstrap and p."""
    from harness.errors import did_you_mean
    from harness.paired import FORMATS, compare_results, render_json, render_markdown, render_rich
    from harness.store import default_cache_dir

    if fmt not in FORMATS:
        raise InputError(f'--format "{fmt}": unknown format{did_you_mean(fmt, FORMATS)}')
    result = compare_results(Path(results_dir), cell_a, cell_b, _state().plugins().registry, dataset=dataset,
                             metric=metric_name, bootstrap=bootstrap, cache_dir=default_cache_dir())  # fmt: skip
    if fmt == "rich":
        from rich.console import Console

        Console(width=None if sys.stdout.isatty() else 160).print(render_rich(result))
    else:
        sys.stdout.write(render_markdown(result) if fmt == "md" else render_json(result))


def _parse_param(text: str) -> tuple[str, Any]:
    import yaml

    if "=" not in text:
        raise InputError(f"--param {text!r}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        return key.strip(), raw


@cli.command()
@click.argument("generations", type=click.Path())
@click.option("--metric", "metric_name", required=True, help="Registered metric name, e.g. ttr or self-bleu.")
@click.option("--param", "raw_params", multiple=True, metavar="KEY=VALUE", help="Metric parameter (repeatable).")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Bootstrap resamples for corpus-level metrics.")
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
@click.option("--train", "train_file", default=None, type=click.Path(),
              help="Training sequences for copying metrics: a train_samples.jsonl (token_ids per line).")
@click.option("--model", "model_loader", default=None, metavar="LOADER",
              help="Model loader for metrics that read a model (tf-entropy, perplexity, ...), e.g. embedded-smollm2.")
@click.option("--model-param", "model_params", multiple=True, metavar="KEY=VALUE",
              help="Parameter of the --model loader (repeatable), e.g. id=TinyLlama/TinyLlama_v1.1.")
@click.option("--device", default="auto", show_default=True, help="Device for --model: cpu, cuda or auto.")
@plugin_options
def score(generations: str, metric_name: str, raw_params: tuple[str, ...], bootstrap: int, seed: int,
          train_file: str | None, model_loader: str | None, model_params: tuple[str, ...], device: str) -> None:  # fmt: skip
    """Score generations made elsewhere (JSONL with `text` or `output_text` per line) and print JSON."""
    from harness.api import LoadContext, MetricContext
    from harness.params import resolve_params
    from harness.scoring import check_requirements, score_metric
    from harness.store import default_cache_dir

    registry = _state().plugins().registry
    registration = registry.get("metric", metric_name)
    params, problems = resolve_params(registration.cls.params, dict(_parse_param(p) for p in raw_params))
    if problems.items:
        raise InputError("; ".join(f"--param {name}: {message}" for name, message in problems.items))
    records = read_generations(Path(generations))
    context = MetricContext(cache_dir=default_cache_dir() / "features")
    source = Path(generations).resolve()
    if source.name == "generations.jsonl" and source.parent.parent.name == "cells":  # RESULTS/cells/CELL/…
        context.results_dir = source.parent.parent.parent
    if train_file:
        train = read_generations(Path(train_file))
        if any(not isinstance(r.get("token_ids"), list) for r in train):
            raise InputError(f"{train_file}: every line needs `token_ids` (a list of ints)")
        context.train_sequences = [r["token_ids"] for r in train]
    if model_loader:
        loader_reg = registry.get("model_loader", model_loader)
        loader_params, problems = resolve_params(loader_reg.cls.params, dict(_parse_param(p) for p in model_params))
        if problems.items:
            raise InputError("; ".join(f"--model-param {name}: {message}" for name, message in problems.items))
        loader = loader_reg.cls(loader_params)
        loaded: list[Any] = []

        def load_model() -> Any:
            if not loaded:
                from harness.model_pool import resolve_device

                ctx = LoadContext(device=resolve_device(device), cache_dir=default_cache_dir() / "models")
                loaded.append(loader.load(ctx))
            return loaded[0]

        context.model = load_model
    metric = registration.cls(params)
    metric.context = context
    check_requirements(metric, records, generations)
    try:
        interval = score_metric(metric, records, bootstrap, seed)
    except (ValueError, TypeError) as exc:  # the metric rejected the records' content
        raise InputError(f"{generations}: metric {metric_name}: {exc}") from None
    click.echo(json.dumps({
        "metric": metric_name, "value": interval.value, "ci_low": interval.ci_low, "ci_high": interval.ci_high,
        "n": interval.n, "interval": interval.method, "warning": interval.warning, "level": metric.level, "higher_is_better": metric.higher_is_better,
        "version": metric.version, "params": params, "definition": metric.definition, "file": generations,
    }, indent=2))  # fmt: skip


def read_generations(path: Path) -> list[dict[str, Any]]:
    """Read a generations JSONL, accepting `text` as an alias of `output_text`."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    from harness.store import read_user_jsonl

    records = []
    for number, record in read_user_jsonl(path):
        if "output_text" not in record and "text" in record:
            record["output_text"] = record["text"]
        record.setdefault("prompt_id", str(number))
        records.append(record)
    if not records:
        raise InputError(f"{path}: no generations")
    return records


@cli.command()
@click.argument("results_dir", type=click.Path())
@click.option("--cell", default=None, help="Only this cell (model__recipe__decoder).")
@click.option("--dataset", default=None, help="Only this eval dataset.")
@click.option("-n", "count", default=3, show_default=True, help="Continuations per cell.")
@click.option("--repeat-ngram", "--ngram", "ngram", default=4, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="Highlight every word N-gram that occurs more than once in a continuation (0: off).")
@plugin_options
def show(results_dir: str, cell: str | None, dataset: str | None, count: int, ngram: int) -> None:
    """Read generated samples, with repeated n-grams highlighted."""
    from harness.show import show_samples

    show_samples(Path(results_dir), cell, dataset, count, ngram)


@cli.command()
@click.argument("results_dir", type=click.Path())
@click.option("--out", "out", default=None, type=click.Path(),
              help="Where to write the HTML (default RESULTS_DIR/report.html).")
@click.option("--copy-ngram", default=8, show_default=True, type=int,
              help="Mark spans of at least this many tokens copied from the recipe's training samples.")
@plugin_options
def report(results_dir: str, out: str | None, copy_ngram: int) -> None:
    """Write one self-contained HTML report: summary, leaderboard, curves, pictures, sample browser."""
    from harness.report import describe, write_report

    registry = _state().plugins().registry  # each model's loader may give its codec: tokens placed in the text
    click.echo(describe(write_report(Path(results_dir), Path(out) if out else None, copy_ngram, registry)), err=True)


@cli.command()
@click.argument("results_dir", type=click.Path())
@click.option("--a", "cell_a", required=True, metavar="CELL", help="A cell (model__recipe__decoder) or `reference`.")
@click.option("--b", "cell_b", required=True, metavar="CELL",
              help="The other cell, or `reference` (the human continuation: the paper's comparison).")
@click.option("--annotator", default=None, metavar="NAME",
              help="Your name (letters, digits, . _ -); judgements go to RESULTS_DIR/annotations/NAME.jsonl. "
                   "Default: the login name.")
@click.option("--dataset", default=None, help="Only the prompts of this eval dataset.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the item order and the left/right sides.")
@plugin_options
def annotate(results_dir: str, cell_a: str, cell_b: str, annotator: str | None, dataset: str | None, port: int,
             seed: int) -> None:  # fmt: skip
    """Blind pairwise human preference: serve a local page (127.0.0.1, secret token) to judge A / B / tie."""
    import getpass

    from harness.annotate import check_annotator, serve

    if annotator is None:
        try:
            annotator = check_annotator(getpass.getuser())
        except (InputError, OSError, KeyError):
            raise InputError("--annotator NAME is needed (the login name is not a safe file name)") from None
    serve(Path(results_dir), cell_a, cell_b, annotator, dataset, port, seed, echo=lambda line: click.echo(line))


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    started = time.perf_counter()
    try:
        cli.main(args=args, prog_name="harness", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except HarnessError as exc:
        if debug:
            traceback.print_exc()
        message = str(exc)
        prefix = "error: " if "\n" not in message else "error:\n  "
        click.echo(prefix + message.replace("\n", "\n  "), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted after {time.perf_counter() - started:.0f}s: finished stages are stored; "
            "rerun the same command to resume",
            err=True,
        )
        sys.exit(130)
    except Exception as exc:  # a bug: keep the message short unless asked
        if debug:
            traceback.print_exc()
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":  # `python -m harness.cli`
    main()
