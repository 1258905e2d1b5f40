"""Parse and validate a benchmark YAML completely before anything heavy runs.

Every problem is reported (not just the first) as ``FILE:LINE: field.path: message`` with the bad value
and, for names, a "did you mean" suggestion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.api import Plugin
from harness.code_identity import module_source_hash
from harness.errors import ConfigError, did_you_mean
from harness.params import Param, resolve_params
from harness.registry import KIND_LABELS, Registration, Registry

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
TOP_LEVEL = ("name", "description", "seed", "models", "datasets", "recipes", "decoders", "metrics", "eval", "matrix",
             "baselines", "trackers")
EVAL_SCHEMA = (
    Param("datasets", list, help="dataset names to draw held-out contexts from"),
    Param("contexts", int, default=100, min=1, help="held-out contexts per eval dataset"),
    Param("context_tokens", int, default=32, min=1, help="prompt length in tokens"),
    Param("new_tokens", int, default=96, min=1, help="tokens generated per context"),
    Param("batch_size", (int, str), default=8, min=1,
          help='continuations per generation batch, or "auto": the largest that fits on the GPU (8 on a CPU)'),
    Param("samples_per_prompt", int, default=1, min=1, help="continuations per context for sampling decoders"),
    Param("overlap_ngram", int, default=13, min=1,
          help="disjointness: no run of this many tokens of an eval context or its reference (special tokens "
               "stripped) may occur in a training or held-out sequence"),
    Param("stop_at_eos", bool, default=False,
          help="false: every continuation has exactly new_tokens tokens (EOS suppressed, as the paper compares); "
               "true: a row stops at EOS, its length is recorded and metrics apply their short-row rules"),
    Param("bootstrap", int, default=1000, min=0, help="bootstrap resamples for corpus-level metric intervals"),
    Param("context_fraction", float, default=None, min=0.0, max=1.0, exclusive_min=True,
          help="image models only: share of the image's rows given as context (default 0.25, the paper's); "
               "the rest of the image is generated, so context_tokens/new_tokens do not apply"),
)
#: eval keys that set lengths: which apply to a model is its codec's rule (``Codec.length_keys``)
TEXT_LENGTH_KEYS = ("context_tokens", "new_tokens")
TRAIN_KEYS = ("dataset", "samples", "tokens")
AXES = {"model": "models", "recipe": "recipes", "decoder": "decoders"}


@dataclass
class Component:
    """One configured plugin instance: the user's name for it, the plugin and its resolved params."""

    key: str
    kind: str
    registration: Registration
    params: dict[str, Any]
    train: dict[str, Any] | None = None  # recipes only: {dataset, samples, tokens}
    #: decoders only: the parts of a ``compose:`` entry (the registration is then harness.composition's)
    parts: list["Component"] | None = None
    #: decoders only: where the decoding runs, "loop" (ours, harness.decoding) or "vllm" (harness.vllm_backend)
    backend: str = "loop"

    @property
    def plugin(self) -> str:
        return self.registration.name

    @property
    def deterministic(self) -> bool:
        """Whether one draw per prompt says everything: a composition is when all its parts are."""
        if self.parts is not None:
            return all(part.deterministic for part in self.parts)
        return bool(getattr(self.registration.cls, "deterministic", True))

    def instantiate(self) -> Any:
        if self.parts is not None:
            return self.registration.cls([part.instantiate() for part in self.parts], {"compose": self.compose_list()})
        return self.registration.cls(self.params)

    def compose_list(self) -> list[dict[str, Any]]:
        """A composition's parts as written in YAML, defaults filled in (``[]`` for a plain component)."""
        return [{"plugin": part.plugin, **part.params} for part in self.parts or ()]

    def identity(self) -> dict[str, Any]:
        """Everything about this component that decides its outputs (for stage keys): plugin name, version,
        the hash of its code and its distribution's version, and the params that affect results (not the
        ones marked ``affects_result=False``, e.g. logging and checkpoint cadence)."""
        from harness.code_identity import class_source_hash

        cls = self.registration.cls
        logged = self.logging_params()
        out = {
            "plugin": self.plugin,
            "version": cls.version,
            "code": class_source_hash(cls),
            "distribution": [self.registration.source.distribution, self.registration.source.version],
            "params": {k: v for k, v in self.params.items() if k not in logged},
        }
        if self.train is not None:
            out["train"] = self.train
        if self.parts is not None:
            out["parts"] = [part.identity() for part in self.parts]
        if self.backend != "loop":  # absent for our loop, so the keys of every existing decoder stay as they were
            from harness.vllm_backend import vllm_version  # sampled tokens depend on vLLM's sampler: its version too

            out["backend"] = {"name": self.backend, "version": vllm_version(),
                              "code": [module_source_hash("harness.vllm_backend"), module_source_hash("harness.vllm_worker")]}
        return out

    def logging_params(self) -> dict[str, Any]:
        """The params marked ``affects_result=False``: they decide what is logged or saved, not the output."""
        ignored = {p.name for p in self.registration.cls.params if not p.affects_result}
        return {k: v for k, v in self.params.items() if k in ignored}

    def training_draw(self) -> dict[str, Any] | None:
        """The ``train:`` block without ``heldout``: what draws the training sequences (the held-out count does not)."""
        return None if self.train is None else {k: v for k, v in self.train.items() if k != "heldout"}


@dataclass
class EvalSpec:
    datasets: list[str]
    contexts: int
    context_tokens: int
    new_tokens: int
    batch_size: int | str
    bootstrap: int
    samples_per_prompt: int = 1
    #: the EOS policy: False = fixed length (EOS suppressed), True = stop at EOS (see DecodeContext)
    stop_at_eos: bool = False
    #: disjointness check: token n-gram length (see harness.sampling.check_disjoint)
    overlap_ngram: int = 13
    #: image models: share of rows given as context (None for text benchmarks)
    context_fraction: float | None = None


@dataclass(frozen=True)
class Cell:
    model: str
    recipe: str
    decoder: str

    @property
    def id(self) -> str:
        return f"{self.model}__{self.recipe}__{self.decoder}"


@dataclass
class Benchmark:
    name: str
    path: Path
    seed: int
    description: str
    models: dict[str, Component]
    datasets: dict[str, Component]
    recipes: dict[str, Component]
    decoders: dict[str, Component]
    metrics: dict[str, Component]
    eval: EvalSpec
    cells: list[Cell] = field(default_factory=list)
    #: cell ids (model__recipe__decoder) every other cell is compared with, paired over prompts (harness.paired)
    baselines: list[str] = field(default_factory=list)
    #: tracker name → its resolved settings (harness.trackers); where the run is mirrored, never in a stage key
    trackers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def components(self) -> list["Component"]:
        """Every configured plugin instance, the parts of composed decoders included (manifest, plugin table)."""
        out: list[Component] = []
        for section in (self.models, self.datasets, self.recipes, self.decoders, self.metrics):
            for comp in section.values():
                out.append(comp)
                out.extend(comp.parts or [])
        return out

    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in, as recorded in manifest.json."""

        def section(items: dict[str, Component], plugin_key: str) -> dict[str, Any]:
            out = {}
            for key, comp in items.items():
                if comp.parts is not None:
                    out[key] = {"compose": comp.compose_list()}
                    continue
                entry: dict[str, Any] = {plugin_key: comp.plugin, **comp.params}
                if comp.train is not None:
                    entry["train"] = comp.train
                if comp.backend != "loop":
                    entry["backend"] = comp.backend
                out[key] = entry
            return out

        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "models": section(self.models, "loader"),
            "datasets": section(self.datasets, "plugin"),
            "recipes": section(self.recipes, "plugin"),
            "decoders": section(self.decoders, "plugin"),
            "metrics": section(self.metrics, "plugin"),
            # context_fraction only where it applies (image benchmarks): text configs resolve as before
            "eval": {k: v for k, v in vars(self.eval).items() if not (k == "context_fraction" and v is None)},
            "matrix": [vars(c).copy() for c in self.cells],
            **({"baselines": list(self.baselines)} if self.baselines else {}),  # absent: configs resolve as before
        }


# --------------------------------------------------------------------------- YAML with line numbers


def _line_map(node: yaml.Node, path: tuple, lines: dict[tuple, int], problems: list[tuple[tuple, str]]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: keys written next to it override the merged ones, by design
            if key in seen:
                problems.append((path + (key,), f"duplicate key {key!r}"))
            seen.add(key)
            _line_map(value_node, path + (key,), lines, problems)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), lines, problems)


class _Problems:
    """Collects problems with their location so they can all be reported at once."""

    def __init__(self, file: Path, lines: dict[tuple, int]):
        self.file = file
        self.lines = lines
        self.items: list[str] = []

    def add(self, path: tuple, message: str) -> None:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        where = f"{self.file}:{line}" if line else str(self.file)
        dotted = ".".join(str(p) for p in path) or "(top level)"
        self.items.append(f"{where}: {dotted}: {message}")


def read_yaml(path: Path) -> tuple[Any, dict[tuple, int], list[tuple[tuple, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such benchmark file"]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read benchmark file ({exc})"]) from None
    try:
        loader = yaml.SafeLoader(text)
        lines: dict[tuple, int] = {}
        dupes: list[tuple[tuple, str]] = []
        try:
            node = loader.get_single_node()
            if node is not None:
                _line_map(node, (), lines, dupes)  # before constructing: that flattens merge keys in place
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    return data, lines, dupes


# --------------------------------------------------------------------------- validation


def _check_name(problems: _Problems, path: tuple, name: Any) -> bool:
    if not isinstance(name, str) or not NAME_RE.match(name) or "__" in name:
        problems.add(path, f"{name!r} is not a valid name (letters, digits, '.', '_', '-'; no '__')")
        return False
    return True


def _components(
    data: dict, section: str, kind: str, plugin_key: str, registry: Registry, problems: _Problems, required: bool
) -> dict[str, Component]:
    raw = data.get(section)
    out: dict[str, Component] = {}
    if raw is None:
        if required:
            problems.add((section,), f"missing section: define at least one {KIND_LABELS[kind]}")
        return out
    if not isinstance(raw, dict) or not raw:
        problems.add((section,), f"expected a non-empty mapping of name → {KIND_LABELS[kind]}, got {raw!r}")
        return out
    for key, entry in raw.items():
        path = (section, key)
        if not _check_name(problems, path, key):
            continue
        if not isinstance(entry, dict):
            problems.add(path, f"expected a mapping with `{plugin_key}:`, got {entry!r}")
            continue
        backend = "loop"
        if section == "decoders" and "backend" in entry:
            entry = dict(entry)
            backend = _decoder_backend(path, entry, problems)
        if section == "decoders" and "compose" in entry:
            composed = _composed_decoder(key, entry, registry, problems)
            if composed is not None:
                out[key] = composed
                if backend == "vllm":
                    problems.add(path + ("backend",), _vllm_problem("compose", {"compose": entry["compose"]}) or "")
            continue
        entry = dict(entry)
        plugin_name = entry.pop(plugin_key, None)
        if plugin_name is None:
            problems.add(path, f"missing `{plugin_key}:` (the registered {KIND_LABELS[kind]} name)")
            continue
        reg = registry.find(kind, str(plugin_name))
        if reg is None:
            problems.add(
                path + (plugin_key,),
                f'unknown {KIND_LABELS[kind]} "{plugin_name}"' + did_you_mean(str(plugin_name), registry.names(kind)),
            )
            continue
        train = entry.pop("train", None) if kind == "recipe" else None
        params, param_problems = resolve_params(reg.cls.params, entry)
        for name, message in param_problems.items:
            problems.add(path + (name,), message)
        comp = Component(key, kind, reg, params, backend=backend)
        if kind == "recipe":
            comp.train = _train_block(reg, train, path, data, problems)
        if backend == "vllm" and not param_problems.items:
            problem = _vllm_problem(reg.name, params)
            if problem:
                problems.add(path + ("backend",), problem)
        out[key] = comp
    return out


#: where a decoder may run: our loop, or vLLM in its own environment (docs/vllm.md)
BACKENDS = ("loop", "vllm")


def _decoder_backend(path: tuple, entry: dict, problems: _Problems) -> str:
    """Pop and check a decoder entry's ``backend:``."""
    backend = entry.pop("backend")
    if backend not in BACKENDS:
        problems.add(path + ("backend",), f"unknown backend {backend!r} (choose from: {', '.join(BACKENDS)})")
        return "loop"
    return str(backend)


def _vllm_problem(plugin: str, params: dict[str, Any]) -> str | None:
    from harness.vllm_backend import vllm_problem

    return vllm_problem(plugin, params)


def _composed_decoder(key: str, entry: dict, registry: Registry, problems: _Problems) -> Component | None:
    """A ``compose:`` decoder entry: every part a registered composable decoder with valid params, adjust
    parts before warp parts (the rules of harness.composition); None when anything is wrong (all reported)."""
    from harness.composition import ComposedDecoder, composition_problems, core_source

    path = ("decoders", key)
    ok = True
    for other in entry:
        if other != "compose":
            problems.add(path + (other,), f"a composed decoder has only `compose:` (its parts carry the params); "
                                          f"move {other!r} into one of the parts")  # fmt: skip
            ok = False
    raw = entry["compose"]
    if not isinstance(raw, list) or not raw:
        problems.add(path + ("compose",), f"expected a non-empty list of {{plugin: NAME, ...params}} decoders, got {raw!r}")
        return None
    parts: list[Component] = []
    indices: list[int] = []  # each resolved part's position in the YAML list
    for i, item in enumerate(raw):
        where = path + ("compose", i)
        if not isinstance(item, dict):
            problems.add(where, f"expected a mapping with `plugin:`, got {item!r}")
            ok = False
            continue
        item = dict(item)
        if "compose" in item:
            problems.add(where + ("compose",), "compositions do not nest: list every part in one `compose:` list")
            ok = False
            continue
        plugin_name = item.pop("plugin", None)
        if plugin_name is None:
            problems.add(where, "missing `plugin:` (the registered decoder name)")
            ok = False
            continue
        reg = registry.find("decoder", str(plugin_name))
        if reg is None:
            names = registry.names("decoder")
            problems.add(where + ("plugin",), f'unknown decoder "{plugin_name}"' + did_you_mean(str(plugin_name), names))
            ok = False
            continue
        params, param_problems = resolve_params(reg.cls.params, item)
        for name, message in param_problems.items:
            problems.add(where + (name,), message)
            ok = False
        parts.append(Component(f"{key}.compose.{i}", "decoder", reg, params))
        indices.append(i)
    for j, message in composition_problems([part.registration.cls for part in parts]) if parts else ():
        problems.add(path + ("compose", indices[j], "plugin"), message)
        ok = False
    if not ok:
        return None
    return Component(key, "decoder", Registration("decoder", ComposedDecoder, core_source()), {}, parts=parts)


def _train_block(reg: Registration, train: Any, path: tuple, data: dict, problems: _Problems) -> dict | None:
    trains = getattr(reg.cls, "trains", True)
    if train is None and (not trains or not getattr(reg.cls, "needs_training_data", True)):
        return None  # a recipe that does not train (or only combines other fits) may still name sequences
    if not isinstance(train, dict):
        problems.add(path + ("train",), f"recipe \"{reg.name}\" needs `train: {{dataset: NAME, samples: N, tokens: T}}`, got {train!r}")
        return None
    resolved, param_problems = resolve_params(reg.cls.train_params(), train)
    for name, message in param_problems.items:
        problems.add(path + ("train", name), message)
    datasets = data.get("datasets") or {}
    if isinstance(resolved.get("dataset"), str) and resolved["dataset"] not in datasets:
        problems.add(
            path + ("train", "dataset"),
            f'undefined dataset "{resolved["dataset"]}"' + did_you_mean(resolved["dataset"], datasets),
        )
    return resolved


def _eval_spec(data: dict, problems: _Problems) -> EvalSpec | None:
    raw = data.get("eval")
    if not isinstance(raw, dict):
        problems.add(("eval",), f"expected a mapping with at least `datasets: [...]`, got {raw!r}")
        return None
    resolved, param_problems = resolve_params(EVAL_SCHEMA, raw)
    for name, message in param_problems.items:
        problems.add(("eval", name), message)
    names = resolved.get("datasets")
    defined = data.get("datasets") if isinstance(data.get("datasets"), dict) else {}
    if isinstance(names, list):
        if not names:
            problems.add(("eval", "datasets"), "list at least one dataset")
        for i, name in enumerate(names):
            if not isinstance(name, str):
                problems.add(("eval", "datasets", i), f"expected a dataset name, got {name!r}")
            elif name not in defined:
                problems.add(("eval", "datasets", i), f'undefined dataset "{name}"' + did_you_mean(name, defined))
    if isinstance(resolved.get("batch_size"), str) and resolved["batch_size"] != "auto":
        problems.add(("eval", "batch_size"), f'expected a positive int or "auto", got {resolved["batch_size"]!r}')
        return None
    if param_problems.items or not isinstance(names, list):
        return None
    return EvalSpec(**resolved)


def _cells(data: dict, sections: dict[str, dict[str, Component]], problems: _Problems) -> list[Cell]:
    raw = data.get("matrix")
    everything = {axis: list(sections[plural]) for axis, plural in AXES.items()}
    if raw is None:
        raw = [{}]
    if not isinstance(raw, list) or not raw:
        problems.add(("matrix",), f"expected a list of {{model, recipe, decoder}} entries, got {raw!r}")
        return []
    cells: list[Cell] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            problems.add(("matrix", i), f"expected a mapping, got {entry!r}")
            continue
        for key in entry:
            if key not in AXES:
                problems.add(("matrix", i, key), f"unknown key {key!r}" + did_you_mean(str(key), AXES))
        picks: dict[str, list[str]] = {}
        for axis, plural in AXES.items():
            value = entry.get(axis, everything[axis])
            values = value if isinstance(value, list) else [value]
            defined = data.get(plural) if isinstance(data.get(plural), dict) else {}
            for name in values:
                if not isinstance(name, str):
                    problems.add(("matrix", i, axis), f"expected a {axis} name or a list of names, got {name!r}")
                elif name not in defined:
                    problems.add(("matrix", i, axis), f'undefined {axis} "{name}"' + did_you_mean(name, defined))
            picks[axis] = [v for v in values if isinstance(v, str) and v in sections[plural]]
        for m in picks["model"]:
            for r in picks["recipe"]:
                for d in picks["decoder"]:
                    cell = Cell(m, r, d)
                    if cell not in cells:
                        cells.append(cell)
    if not cells and not problems.items:
        problems.add(("matrix",), "selects no model × recipe × decoder combination: nothing would run")
    return cells


def _baselines(data: dict, cells: list[Cell], problems: _Problems) -> list[str]:
    """``baselines: [model__recipe__decoder, ...]``: cells of the matrix that every other cell is compared with."""
    raw = data.get("baselines")
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(("baselines",), f"expected a list of cell ids (model__recipe__decoder), got {raw!r}")
        return []
    ids = [cell.id for cell in cells]
    out: list[str] = []
    for i, name in enumerate(raw):
        if not isinstance(name, str):
            problems.add(("baselines", i), f"expected a cell id (model__recipe__decoder), got {name!r}")
        elif name in out:
            problems.add(("baselines", i), f'"{name}" is listed twice')
        elif name not in ids:
            problems.add(("baselines", i), f'unknown cell "{name}": not in the matrix' + did_you_mean(name, ids))
        else:
            out.append(name)
    return out


def _trackers(data: dict, problems: _Problems) -> dict[str, dict[str, Any]]:
    """``trackers: {mlflow: {...}, wandb: {...}, tensorboard: {...}}`` (or a list of names, each at its defaults):
    the experiment trackers that mirror the run. Only where results are mirrored: no stage key sees it."""
    from harness.trackers import TRACKERS

    raw = data.get("trackers")
    if raw is None:
        return {}
    if isinstance(raw, list) and all(isinstance(name, str) for name in raw):
        raw = {name: {} for name in raw}
    if not isinstance(raw, dict):
        problems.add(("trackers",), "expected a mapping of tracker name → settings, e.g. {mlflow: {}, tensorboard: "
                                    f"{{log_dir: runs}}}} (or a list of names), got {raw!r}")  # fmt: skip
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, settings in raw.items():
        path = ("trackers", name)
        if name not in TRACKERS:
            problems.add(path, f'unknown tracker "{name}"' + did_you_mean(str(name), TRACKERS))
            continue
        if settings is None:
            settings = {}  # `mlflow:` alone: the defaults
        if not isinstance(settings, dict):
            problems.add(path, f"expected a mapping of {name} settings ({{}} for the defaults), got {settings!r}")
            continue
        resolved, param_problems = resolve_params(TRACKERS[name].params, settings)
        for key, message in param_problems.items:
            problems.add(path + (key,), message)
        out[name] = resolved
    return out


def _sizes_and_modalities(bench_parts: dict[str, Any], problems: _Problems) -> None:
    for section in ("models", "datasets", "recipes", "decoders", "metrics"):
        for key, comp in bench_parts[section].items():
            for name, message in comp.registration.cls.config_problems(comp.params, comp.train):
                problems.add((section, key, name), message)
    models: dict[str, Component] = bench_parts["models"]
    for mkey, model in models.items():
        modality = getattr(model.registration.cls, "modality", "text")
        for section in ("datasets", "metrics"):
            for key, comp in bench_parts[section].items():
                allowed = getattr(comp.registration.cls, "modalities", None) or (getattr(comp.registration.cls, "modality", modality),)
                if modality not in allowed:
                    problems.add(
                        (section, key, "plugin"),
                        f'{KIND_LABELS[comp.kind]} "{comp.plugin}" handles {"/".join(allowed)}, '
                        f'but model "{mkey}" is {modality}: use a {KIND_LABELS[comp.kind]} that declares the '
                        f"{modality} modality (`harness plugins` lists them)",
                    )


def _eval_lengths(data: dict, bench_parts: dict[str, Any], spec: "EvalSpec | None", problems: _Problems) -> None:
    """Each model's codec says which ``eval:`` keys set its lengths (text: context_tokens/new_tokens; images:
    context_fraction); a length key that none of the benchmark's models uses, or that one of them ignores,
    is refused, and the codecs' own defaults fill the keys they use."""
    if spec is None:
        return
    raw = data.get("eval") if isinstance(data.get("eval"), dict) else {}
    codecs = {key: m.registration.cls.codec_type for key, m in bench_parts["models"].items()}
    every_key = {k for codec in codecs.values() for k in codec.length_keys} | set(TEXT_LENGTH_KEYS) | {"context_fraction"}
    for key in sorted(every_key & set(raw)):
        ignoring = [m for m, codec in codecs.items() if key not in codec.length_keys]
        if ignoring:
            codec = codecs[ignoring[0]]
            problems.add(
                ("eval", key),
                f'does not apply to {codec.modality} models like "{ignoring[0]}": their lengths come from '
                f"eval.{' and eval.'.join(codec.length_keys)}; remove it",
            )
    for codec in codecs.values():
        for key, default in codec.length_defaults.items():
            if getattr(spec, key, None) is None and key not in raw:
                setattr(spec, key, default)


def _overlapping_slices(bench_parts: dict[str, Any], problems: _Problems) -> None:
    """Images that pretrain a model or train a metric's classifier must not also be training/eval documents."""
    slices = []
    for section in ("models", "datasets", "metrics"):
        for key, comp in bench_parts[section].items():
            if comp.registration.cls.data_slices is Plugin.data_slices:
                continue  # reads no shared offline source: not even instantiated
            try:
                owned = comp.instantiate().data_slices()
            except Exception:  # a plugin that cannot even be built is reported elsewhere
                continue
            slices.extend((section, key, source, start, stop) for source, start, stop in owned)
    for i, (sec_a, key_a, src_a, start_a, stop_a) in enumerate(slices):
        for sec_b, key_b, src_b, start_b, stop_b in slices[i + 1 :]:
            if sec_a == sec_b == "datasets" or src_a != src_b:
                continue  # datasets among themselves: the runner checks documents are disjoint
            end_a, end_b = stop_a if stop_a is not None else float("inf"), stop_b if stop_b is not None else float("inf")
            if max(start_a, start_b) < min(end_a, end_b):
                problems.add(
                    (sec_b, key_b),
                    f"reads {src_b} images {start_b}…{'' if stop_b is None else stop_b - 1}, which overlap "
                    f"{sec_a}.{key_a}'s {start_a}…{'' if stop_a is None else stop_a - 1}: use disjoint start/stop ranges",
                )


def load_benchmark(path: Path | str, registry: Registry) -> Benchmark:
    """Read and validate one benchmark file; raise ConfigError listing every problem."""
    path = Path(path)
    data, lines, dupes = read_yaml(path)
    problems = _Problems(path, lines)
    for p, message in dupes:
        problems.add(p, message)
    if not isinstance(data, dict):
        problems.add((), f"expected a mapping at the top level, got {type(data).__name__}")
        raise ConfigError(problems.items)
    for key in data:
        if key not in TOP_LEVEL:
            problems.add((key,), f"unknown top-level key {key!r}" + did_you_mean(str(key), TOP_LEVEL))
    name = data.get("name", path.stem)
    _check_name(problems, ("name",), name)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.add(("seed",), f"expected a non-negative int, got {seed!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.add(("description",), f"expected a string, got {description!r}")
    parts = {
        "models": _components(data, "models", "model_loader", "loader", registry, problems, required=True),
        "datasets": _components(data, "datasets", "dataset", "plugin", registry, problems, required=True),
        "recipes": _components(data, "recipes", "recipe", "plugin", registry, problems, required=True),
        "decoders": _components(data, "decoders", "decoder", "plugin", registry, problems, required=True),
        "metrics": _components(data, "metrics", "metric", "plugin", registry, problems, required=True),
    }
    spec = _eval_spec(data, problems)
    cells = _cells(data, parts, problems)
    baselines = _baselines(data, cells, problems)
    trackers = _trackers(data, problems)
    _sizes_and_modalities(parts, problems)
    _eval_lengths(data, parts, spec, problems)
    _overlapping_slices(parts, problems)
    if problems.items:
        raise ConfigError(problems.items)
    assert spec is not None
    return Benchmark(
        name=name,
        path=path,
        seed=seed,
        description=description,
        eval=spec,
        cells=cells,
        baselines=baselines,
        trackers=trackers,
        **parts,
    )
