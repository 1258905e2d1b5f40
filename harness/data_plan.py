"""The plan phase: every data draw of a run and the keys of the stages built on them, before any training.

For each model: the eval contexts of every eval dataset; for each (model, recipe) that trains: its
training sequences (documents of eval contexts reserved), its held-out sequences (documents used
nowhere else) and the disjointness verdicts; then the fit key of every (model, recipe) and the
generate key of every (cell, eval dataset). Draws are stored stages: a rerun reads them back.
The codec of each model decides the lengths (``Codec.eval_lengths``) and what a training sequence may be.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from harness.code_identity import module_source_hash
from harness.config import Benchmark, Cell, Component
from harness.errors import HarnessError, InputError, RunError
from harness.model_pool import ModelPool
from harness.sampling import (
    EvalContext,
    TokenizedDocument,
    TrainSample,
    check_disjoint,
    derive_seed,
    draw_contexts,
    draw_heldout,
    draw_training,
)
from harness.stages import StageBook
from harness.store import content_key


@dataclass
class ContextDraw:
    """The eval contexts of one (model, dataset) and the key of their draw."""

    key: str
    contexts: list[EvalContext]


@dataclass
class FitPlan:
    """What one (model, recipe) fits on, and the fit's key. ``samples`` None: the recipe has no ``train:``."""

    model: str
    recipe: Component
    key: str
    samples: list[TrainSample] | None = None
    heldout: list[TrainSample] = field(default_factory=list)
    #: the seed of the training data order: from the run seed and the training set's content alone
    data_seed: int | None = None
    #: the fits this recipe reads (``recipe_dependencies``), by recipe name; planned and trained before it
    reads: dict[str, "FitPlan"] = field(default_factory=dict)

    @property
    def trains(self) -> bool:
        """The recipe makes weights of its own: from training data, or from the fits it reads (a graft)."""
        return (self.samples is not None or bool(self.reads)) and bool(self.recipe.registration.cls.trains)

    def read(self, name: str) -> "FitPlan":
        if name not in self.reads:
            raise ValueError(f"recipe {self.recipe.key} reads the fit of {name!r} without naming it in recipe_dependencies()")
        return self.reads[name]

    @property
    def weights_key(self) -> str | None:
        """The fit key whose stored weights this (model, recipe) uses; None: the loader's own weights."""
        return self.key if self.trains else None

    @property
    def train_sequences(self) -> list[list[int]] | None:
        return [s.token_ids for s in self.samples] if self.samples else None


@dataclass
class GenerationPlan:
    """One (cell, eval dataset): the rows to continue (prompt, draw index) and the generate key."""

    cell: Cell
    dataset: str
    key: str
    fit: FitPlan
    rows: list[tuple[EvalContext, int]]
    new_tokens: int
    samples_per_prompt: int
    #: the fits the decoder reads (``recipe_dependencies``), by recipe name
    reads: dict[str, FitPlan] = field(default_factory=dict)

    def read(self, name: str) -> FitPlan:
        if name not in self.reads:
            raise ValueError(f"decoder {self.cell.decoder} reads the fit of {name!r} without naming it in recipe_dependencies()")
        return self.reads[name]


@dataclass
class Plan:
    contexts: dict[tuple[str, str], ContextDraw]
    fits: dict[tuple[str, str], FitPlan]
    generations: list[GenerationPlan]
    #: what check_disjoint verified, per "model/recipe" and role
    disjointness: dict[str, dict[str, Any]]
    #: per dataset: content hash and document count (manifest)
    data: dict[str, dict[str, Any]]
    #: per "model/recipe": what the recipe's "auto" params resolved to (manifest)
    fit_settings: dict[str, dict[str, Any]] = field(default_factory=dict)


class DataPlanner:
    """Draws the run's data once, in order: contexts, then training and held-out sets, then the keys."""

    def __init__(self, bench: Benchmark, book: StageBook, pool: ModelPool, limit: int | None):
        self.bench = bench
        self.book = book
        self.pool = pool
        self.limit = limit
        self._docs: dict[str, list[Any]] = {}
        self._data_hash: dict[str, str] = {}
        self._tokenized: dict[tuple[str, str], list[TokenizedDocument]] = {}
        self.disjointness: dict[str, dict[str, Any]] = {}
        self.resolved_fits: dict[str, dict[str, Any]] = {}  # per "model/recipe": the recipe's resolved settings

    # ------------------------------------------------------------------ documents

    def documents(self, dataset: str) -> list[Any]:
        if dataset not in self._docs:
            comp = self.bench.datasets[dataset]
            with self.book.timed("load-data"):
                try:
                    docs = list(comp.instantiate().documents())
                except HarnessError:
                    raise
                except Exception as exc:
                    raise RunError(f'dataset "{dataset}" ({comp.plugin}) failed to read: {type(exc).__name__}: {exc}') from exc
                if not docs:
                    raise InputError(f'dataset "{dataset}" ({comp.plugin}) yielded no documents')
                seen: set[str] = set()
                digest = hashlib.sha256()
                for doc in docs:
                    if doc.id in seen:
                        raise InputError(f'dataset "{dataset}" ({comp.plugin}) yields the document id "{doc.id}" twice')
                    seen.add(doc.id)
                    digest.update(doc.content_bytes())
            self._docs[dataset] = docs
            self._data_hash[dataset] = digest.hexdigest()
        return self._docs[dataset]

    def data_hash(self, dataset: str) -> str:
        self.documents(dataset)
        return self._data_hash[dataset]

    def tokenized(self, model: str, dataset: str) -> list[TokenizedDocument]:
        if (model, dataset) not in self._tokenized:
            docs = self.documents(dataset)
            codec = self.pool.codec(model)  # may load the model: timed as "load", not here
            with self.book.timed("tokenize"):
                self._tokenized[(model, dataset)] = [
                    TokenizedDocument(d.id, tuple(codec.encode_document(d)), getattr(d, "label", None)) for d in docs
                ]
        return self._tokenized[(model, dataset)]

    def eval_lengths(self, model: str) -> tuple[int, int]:
        """(context tokens, new tokens) of the eval protocol for this model: its codec's rule (from the codec's
        class where the lengths do not depend on the loaded codec, so a warm run loads nothing)."""
        codec_type = self.bench.models[model].registration.cls.codec_type
        static = codec_type.static_eval_lengths(self.bench.eval)
        return static if static is not None else self.pool.codec(model).eval_lengths(self.bench.eval)

    # ------------------------------------------------------------------ the plan

    def plan(self) -> Plan:
        groups = list(dict.fromkeys((c.model, c.recipe) for c in self.bench.cells))
        models = list(dict.fromkeys(m for m, _ in groups))
        contexts = {(m, d): self.contexts(m, d) for m in models for d in self.bench.eval.datasets}
        fits: dict[tuple[str, str], FitPlan] = {}
        for model, recipe_key in groups:
            self.plan_fit(model, recipe_key, contexts, fits, ())
        # decoders and metrics may read another recipe's fit of the same model: plan those fits too
        for model in models:
            for recipe_key in self.component_recipes():
                self.plan_fit(model, recipe_key, contexts, fits, ())
        generations = [
            self.generation_plan(cell, dataset, fits, contexts[(cell.model, dataset)])
            for cell in self.bench.cells
            for dataset in self.bench.eval.datasets
        ]
        data = {key: {"sha256": self._data_hash.get(key), "documents": len(self._docs.get(key, []))} for key in self.bench.datasets}
        return Plan(contexts, fits, generations, self.disjointness, data, self.resolved_fits)

    def component_recipes(self) -> list[str]:
        """Recipes named by decoders and metrics (``recipe_dependencies``), checked to exist in the benchmark."""
        names: list[str] = []
        for kind, components in (("decoder", self.bench.decoders), ("metric", self.bench.metrics)):
            for name, component in components.items():
                names += self.dependencies(f"{kind}s.{name}", component)
        return list(dict.fromkeys(names))

    def dependencies(self, where: str, component: Component) -> list[str]:
        names = list(component.instantiate().recipe_dependencies())
        for key in names:
            if key not in self.bench.recipes:
                raise InputError(f'{where} ({component.plugin}) reads the fit of recipe "{key}", which {self.bench.path} does not define')
        return names

    def plan_fit(self, model: str, recipe_key: str, contexts: dict[tuple[str, str], ContextDraw],
                 fits: dict[tuple[str, str], FitPlan], chain: tuple[str, ...]) -> FitPlan:  # fmt: skip
        """The fit of (model, recipe), after the fits it reads (``recipe_dependencies``): ``fits`` is filled in
        the order they must be trained, and a recipe's key holds the keys of the fits it reads."""
        if (model, recipe_key) in fits:
            return fits[(model, recipe_key)]
        if recipe_key in chain:
            raise InputError(f"recipes {' → '.join(chain + (recipe_key,))}: a recipe cannot read its own fit")
        recipe = self.bench.recipes[recipe_key]
        reads = {
            key: self.plan_fit(model, key, contexts, fits, chain + (recipe_key,))
            for key in self.dependencies(f"recipes.{recipe_key}", recipe)
        }
        fits[(model, recipe_key)] = plan = self.fit_plan(model, recipe, contexts, {k: f.key for k, f in reads.items()})
        plan.reads = reads
        return plan

    def contexts(self, model: str, dataset: str) -> ContextDraw:
        spec = self.bench.eval
        comp = self.bench.datasets[dataset]
        context_tokens, new_tokens = self.eval_lengths(model)
        key = content_key(
            "contexts", dataset, self.pool.model_id(model), comp.identity(), self.data_hash(dataset),
            spec.contexts, context_tokens, new_tokens, self.bench.seed,
        )  # fmt: skip
        stored = self.book.get("contexts", key)
        reused = stored is not None
        if stored is None:
            docs = self.tokenized(model, dataset)
            with self.book.timed("contexts"):
                modality = self.pool.codec(model).modality
                drawn = draw_contexts(docs, dataset, spec.contexts, context_tokens, new_tokens, self.bench.seed, modality)
                stored = [c.to_json() for c in drawn]
                self.book.put("contexts", key, stored)
        self.book.count("contexts", reused)
        self.book.note_key("contexts", f"{model}/{dataset}", key)
        return ContextDraw(key, [EvalContext(**c) for c in stored])

    def fit_plan(self, model: str, recipe: Component, contexts: dict[tuple[str, str], ContextDraw],
                 reads: dict[str, str] | None = None) -> FitPlan:  # fmt: skip
        """The fit key: model, the recipe's result-deciding params, training data, seed (and the held-out
        sequences for a recipe that selects its weights on them; the keys of the fits it reads). Logging and
        checkpoint params stay out; what "auto" params resolve to on this device (``precision: auto``) goes in."""
        identity = recipe.identity()
        if reads:
            identity["reads_fits"] = reads
        resolved = recipe.instantiate().resolved_settings(self.pool.device)
        if resolved:
            identity["resolved"] = resolved
        self.resolved_fits[f"{model}/{recipe.key}"] = resolved
        if recipe.train is None:
            key = content_key("fit", self.pool.model_id(model), identity, self.bench.seed)
            self.book.note_key("fit", f"{model}/{recipe.key}", key)
            return FitPlan(model, recipe, key)
        train_key, reserved, samples = self.training(model, recipe, contexts)
        heldout = self.heldout(model, recipe, train_key, reserved | {s.doc_id for s in samples}, contexts)
        extra: list[Any] = []
        if recipe.registration.cls.selects_on_heldout:
            extra = [[s.to_json() for s in heldout]]
        else:
            identity["train"] = recipe.training_draw()
        key = content_key("fit", self.pool.model_id(model), identity, train_key, self.bench.seed, *extra)
        self.book.note_key("fit", f"{model}/{recipe.key}", key)
        # the training set itself (not its dataset's name or path) decides the data order
        data_seed = derive_seed(self.bench.seed, "fit", content_key("training-set", [s.token_ids for s in samples]))
        return FitPlan(model, recipe, key, samples, heldout, data_seed)

    def training(
        self, model: str, recipe: Component, contexts: dict[tuple[str, str], ContextDraw]
    ) -> tuple[str, set[str], list[TrainSample]]:
        """The training draw's key, the documents it kept out (eval contexts of its dataset), the sequences."""
        assert recipe.train is not None
        dataset = recipe.train["dataset"]
        reserved_key = contexts[(model, dataset)].key if dataset in self.bench.eval.datasets else None
        reserved = {c.doc_id for c in contexts[(model, dataset)].contexts} if reserved_key else set()
        key = content_key(
            "train", dataset, self.pool.model_id(model), self.bench.datasets[dataset].identity(), self.data_hash(dataset),
            recipe.training_draw(), reserved_key, self.bench.seed,
        )  # fmt: skip
        stored = self.book.get("train", key)
        reused = stored is not None
        if stored is None:  # a stored draw passed this check when it was drawn (its key holds the length)
            problem = self.pool.codec(model).training_length_problem(recipe.train["tokens"])
            if problem:
                raise InputError(f'recipes.{recipe.key}.train.tokens: {recipe.train["tokens"]}, but for model "{model}" {problem}')
            docs = self.tokenized(model, dataset)
            with self.book.timed("train-data"):
                drawn = draw_training(docs, dataset, reserved, recipe.train["samples"], recipe.train["tokens"], self.bench.seed)
                stored = [s.to_json() for s in drawn]
                self.book.put("train", key, stored)
        self.book.count("train", reused)
        samples = [TrainSample(**s) for s in stored]
        self.check_disjoint(model, recipe, samples, "training", key, contexts)
        self.book.note_key("train", f"{model}/{recipe.key}", key)
        return key, reserved, samples

    def heldout(
        self, model: str, recipe: Component, train_key: str, excluded: set[str], contexts: dict[tuple[str, str], ContextDraw]
    ) -> list[TrainSample]:
        """Held-out sequences for the fit's curve: same dataset and length, documents used nowhere else."""
        assert recipe.train is not None
        wanted = recipe.train.get("heldout", 0)
        if not wanted:
            return []
        dataset = recipe.train["dataset"]
        key = content_key("heldout", train_key, wanted)
        stored = self.book.get("heldout", key)
        if stored is None:
            docs = self.tokenized(model, dataset)
            drawn = draw_heldout(docs, dataset, excluded, wanted, recipe.train["tokens"], self.bench.seed)
            stored = [s.to_json() for s in drawn]
            self.book.put("heldout", key, stored)
        if len(stored) < wanted:
            self.book.reporter.log(
                f"recipe {recipe.key}: only {len(stored)} of train.heldout {wanted} held-out sequences fit in dataset "
                f'"{dataset}" outside the training and eval documents; its curve uses those'
            )
        heldout = [TrainSample(**s) for s in stored]
        self.check_disjoint(model, recipe, heldout, "held-out", key, contexts)
        return heldout

    def check_disjoint(
        self, model: str, recipe: Component, sequences: list[TrainSample], role: str, sequences_key: str,
        contexts: dict[tuple[str, str], ContextDraw],
    ) -> None:  # fmt: skip
        """No eval context or reference of any eval dataset overlaps these sequences (recorded for the manifest).

        The verdict is a stage of its own: a warm run reuses it instead of loading the model for its codec's
        special tokens and scanning again (the key holds the model id, so the codec, through its files)."""
        assert recipe.train is not None
        evals = {d: contexts[(model, d)] for d in self.bench.eval.datasets}
        key = content_key("disjoint", role, sequences_key, {d: draw.key for d, draw in evals.items()},
                          self.bench.eval.overlap_ngram, module_source_hash("harness.sampling"))  # fmt: skip
        checks = self.book.get("disjoint", key)
        if checks is None:
            special = self.pool.codec(model).special_token_ids()
            checks = [
                check_disjoint(sequences, draw.contexts, recipe.train["dataset"], special, self.bench.eval.overlap_ngram, role)
                | {"eval_dataset": dataset}
                for dataset, draw in evals.items()
            ]
            self.book.put("disjoint", key, checks)
        self.disjointness.setdefault(f"{model}/{recipe.key}", {})[role] = checks

    def generation_plan(self, cell: Cell, dataset: str, fits: dict[tuple[str, str], FitPlan], draw: ContextDraw) -> GenerationPlan:
        decoder = self.bench.decoders[cell.decoder]
        fit = fits[(cell.model, cell.recipe)]
        spec = self.bench.eval
        new_tokens = self.eval_lengths(cell.model)[1]
        reads = {key: fits[(cell.model, key)] for key in decoder.instantiate().recipe_dependencies()}
        key = content_key(
            "generate", fit.key, decoder.identity(), draw.key, new_tokens, self.bench.seed, {"stop_at_eos": spec.stop_at_eos},
            module_source_hash("harness.decoding"), module_source_hash("harness.forward"),  # the loop decoders run on
            *([{k: f.key for k, f in reads.items()}] if reads else []),  # the fits a decoder reads (e.g. a re-weighting's)
        )  # fmt: skip
        self.book.note_key("generate", f"{cell.id}/{dataset}", key)
        chosen = draw.contexts[: self.limit] if self.limit else draw.contexts
        draws = 1 if decoder.deterministic else spec.samples_per_prompt
        rows = [(c, k) for c in chosen for k in range(draws)]  # one row per (prompt, sample index)
        return GenerationPlan(cell, dataset, key, fit, rows, new_tokens, draws, reads)
