"""Run a validated benchmark: load → fit → contexts → generate → score → report.

Each stage is keyed by a content hash of everything that determines it (plugin name, version and
params, upstream keys, seed, data hash) and stored in the cache as soon as it finishes; generation is
stored per batch. A rerun reuses every stored stage, so a run killed at any point resumes where it
stopped. ``fresh`` ignores stored stages; ``limit`` runs on the first N contexts of each eval dataset.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from harness import distributed
from harness.code_identity import library_versions, module_source_hash
from harness.api import OPTIONAL_SAMPLE_FIELDS, SAMPLE_FIELDS, Codec, DecodeContext, FitContext, LoadContext, MetricContext, ModelHandle
from harness.config import Benchmark, Cell, Component
from harness.errors import HarnessError, InputError, RunError
from harness.progress import Reporter
from harness.results import ResultsWriter, ScoreRow, SpreadRow
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
from harness.scoring import point_value, score_metric
from harness.store import StageCache, content_key


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


def resolve_device(requested: str) -> str:
    if requested != "auto":
        if requested.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise InputError(f"--device {requested}: CUDA is not available on this machine")
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Runner:
    def __init__(self, bench: Benchmark, options: RunOptions, reporter: Reporter | None = None):
        self.bench = bench
        self.options = options
        self.reporter = reporter or Reporter(quiet=True)
        self.cache = StageCache(options.cache_root)
        self.device_name: str | None = None
        self.timings: dict[str, float] = {}
        self.computed: dict[str, int] = {}
        self.reused: dict[str, int] = {}
        self.stage_keys: dict[str, Any] = {"contexts": {}, "train": {}, "fit": {}, "generate": {}, "score": {}}
        self._docs: dict[str, list[Any]] = {}
        self._data_hash: dict[str, str] = {}
        self._tokenized: dict[tuple[str, str], list[TokenizedDocument]] = {}
        self._handle: ModelHandle | None = None
        self._handle_id: tuple[str, str | None] | None = None
        self._fresh_done: set[str] = set()  # keys recomputed in this run (honoured by --fresh)
        self.seed_spread: list[SpreadRow] = []  # per-draw values where samples_per_prompt > 1
        self._fit_keys: dict[tuple[str, str], tuple[str, list[TrainSample] | None]] = {}
        self._heldout: dict[tuple[str, str], list[TrainSample]] = {}
        self._training_sets: dict[tuple[str, str], str] = {}
        self._codecs: dict[str, Codec] = {}
        self._loaders: dict[str, Any] = {key: comp.instantiate() for key, comp in bench.models.items()}
        self._model_ids: dict[str, str] = {}
        self._model_facts: dict[str, dict[str, Any]] = {}
        self.disjointness: dict[str, dict[str, Any]] = {}  # what check_disjoint verified, per (model/recipe)

    # ------------------------------------------------------------------ bookkeeping

    def _count(self, stage: str, reused: bool) -> None:
        table = self.reused if reused else self.computed
        table[stage] = table.get(stage, 0) + 1

    def _timed(self, stage: str, started: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - started

    def _cached(self, stage: str, key: str) -> Any | None:
        if self.options.fresh and key not in self._fresh_done:
            return None
        return self.cache.get(stage, key)

    def _store(self, stage: str, key: str, value: Any) -> None:
        self.cache.put(stage, key, value)
        self._fresh_done.add(key)

    @property
    def device(self) -> str:
        if self.device_name is None:
            self.device_name = resolve_device(self.options.device)
            if self.device_name == "cuda" and distributed.is_distributed():
                self.device_name = f"cuda:{distributed.local_rank()}"  # one GPU per process
        return self.device_name

    # ------------------------------------------------------------------ data

    def documents(self, key: str) -> list[Any]:
        if key not in self._docs:
            started = time.perf_counter()
            comp = self.bench.datasets[key]
            try:
                docs = list(comp.instantiate().documents())
            except HarnessError:
                raise
            except Exception as exc:
                raise RunError(f'dataset "{key}" ({comp.plugin}) failed to read: {type(exc).__name__}: {exc}') from exc
            if not docs:
                raise InputError(f'dataset "{key}" ({comp.plugin}) yielded no documents')
            seen: set[str] = set()
            digest = hashlib.sha256()
            for doc in docs:
                if doc.id in seen:
                    raise InputError(f'dataset "{key}" ({comp.plugin}) yields the document id "{doc.id}" twice')
                seen.add(doc.id)
                digest.update(doc.content_bytes())
            self._docs[key] = docs
            self._data_hash[key] = digest.hexdigest()
            self._timed("load-data", started)
        return self._docs[key]

    def data_hash(self, key: str) -> str:
        self.documents(key)
        return self._data_hash[key]

    def tokenized(self, model: str, dataset: str) -> list[TokenizedDocument]:
        if (model, dataset) not in self._tokenized:
            docs = self.documents(dataset)
            codec = self.codec(model)  # may load the model: timed as "load", not here
            started = time.perf_counter()
            self._tokenized[(model, dataset)] = [
                TokenizedDocument(d.id, tuple(codec.encode_document(d)), getattr(d, "label", None)) for d in docs
            ]
            self._timed("tokenize", started)
        return self._tokenized[(model, dataset)]

    # ------------------------------------------------------------------ models

    def model_facts(self, model: str) -> dict[str, Any]:
        """What decides this model's outputs besides its params: the files' fingerprint, the settings its
        params resolve to here (dtype), the device kind and the libraries' versions. Recorded in the manifest."""
        if model not in self._model_facts:
            loader = self._loaders[model]
            self._model_facts[model] = {
                "fingerprint": loader.fingerprint(),
                "resolved": loader.resolved_settings(self.device),
                "device": "cuda" if self.device.startswith("cuda") else self.device,
                "libraries": library_versions(),
            }
        return self._model_facts[model]

    def model_id(self, model: str) -> str:
        if model not in self._model_ids:
            comp = self.bench.models[model]
            self._model_ids[model] = content_key("model", comp.identity(), self.model_facts(model))
        return self._model_ids[model]

    def _load(self, model: str) -> ModelHandle:
        """Load a model as its loader gives it; only one model is held in memory at a time."""
        self._release()
        started = time.perf_counter()
        self.reporter.log(f"loading model {model} ({self.bench.models[model].plugin}) on {self.device}")
        handle = self._loaders[model].load(LoadContext(device=self.device, cache_dir=self.cache.root / "models"))
        self._codecs[model] = handle.codec
        self._handle, self._handle_id = handle, (model, None)
        self._timed("load", started)
        return handle

    def codec(self, model: str) -> Codec:
        if model not in self._codecs:
            cheap = self._loaders[model].load_codec(LoadContext(device=self.device, cache_dir=self.cache.root / "models"))
            if cheap is not None:
                self._codecs[model] = cheap
            else:
                self._load(model)
        return self._codecs[model]

    def eval_lengths(self, model: str) -> tuple[int, int]:
        """(context tokens, new tokens) of the eval protocol for this model.

        Text: eval.context_tokens and eval.new_tokens. Image: SOS + the first round(context_fraction ·
        height) whole rows as context, the rest of the image as the continuation.
        """
        spec = self.bench.eval
        if getattr(self.bench.models[model].registration.cls, "modality", "text") != "image":
            return spec.context_tokens, spec.new_tokens
        codec = self.codec(model)
        rows = codec.context_rows(spec.context_fraction or 0.25)  # type: ignore[attr-defined]
        width, height = codec.width, codec.height  # type: ignore[attr-defined]
        return 1 + rows * width, (height - rows) * width

    def _release(self) -> None:
        self._handle = None
        self._handle_id = None
        gc.collect()

    # ------------------------------------------------------------------ stages

    def contexts(self, model: str, dataset: str) -> tuple[str, list[EvalContext]]:
        spec = self.bench.eval
        comp = self.bench.datasets[dataset]
        context_tokens, new_tokens = self.eval_lengths(model)
        key = content_key(
            "contexts", dataset, self.model_id(model), comp.identity(), self.data_hash(dataset),
            spec.contexts, context_tokens, new_tokens, self.bench.seed,
        )  # fmt: skip
        stored = self._cached("contexts", key)
        if stored is None:
            docs = self.tokenized(model, dataset)
            started = time.perf_counter()
            modality = getattr(self.bench.models[model].registration.cls, "modality", "text")
            drawn = draw_contexts(docs, dataset, spec.contexts, context_tokens, new_tokens, self.bench.seed, modality)
            stored = [c.to_json() for c in drawn]
            self._store("contexts", key, stored)
            self._timed("contexts", started)
            self._count("contexts", False)
        else:
            self._count("contexts", True)
        self.stage_keys["contexts"][f"{model}/{dataset}"] = key
        return key, [EvalContext(**c) for c in stored]

    def training(self, model: str, recipe: Component) -> tuple[str, list[TrainSample]]:
        assert recipe.train is not None
        dataset = recipe.train["dataset"]
        if getattr(self.bench.models[model].registration.cls, "modality", "text") == "image":
            codec = self.codec(model)
            whole = 1 + int(codec.height) * int(codec.width)  # type: ignore[attr-defined]
            if recipe.train["tokens"] != whole:
                raise InputError(
                    f"recipes.{recipe.key}.train.tokens: {recipe.train['tokens']}, but model \"{model}\" trains on whole "
                    f"images: set it to {whole} (the start token + {codec.height}×{codec.width} pixels)"  # type: ignore[attr-defined]
                )
        reserved: set[str] = set()
        reserved_key = None
        if dataset in self.bench.eval.datasets:
            reserved_key, ctxs = self.contexts(model, dataset)
            reserved = {c.doc_id for c in ctxs}
        key = content_key(
            "train", dataset, self.model_id(model), self.bench.datasets[dataset].identity(), self.data_hash(dataset),
            recipe.training_draw(), reserved_key, self.bench.seed,
        )  # fmt: skip
        stored = self._cached("train", key)
        if stored is None:
            docs = self.tokenized(model, dataset)
            started = time.perf_counter()
            drawn = draw_training(
                docs, dataset, reserved, recipe.train["samples"], recipe.train["tokens"], self.bench.seed
            )
            stored = [s.to_json() for s in drawn]
            self._store("train", key, stored)
            self._timed("train-data", started)
            self._count("train", False)
        else:
            self._count("train", True)
        samples = [TrainSample(**s) for s in stored]
        self._check_disjoint(model, recipe, samples, "training", key)
        self.stage_keys["train"][f"{model}/{recipe.key}"] = key
        self._heldout[(model, recipe.key)] = self._draw_heldout(model, recipe, key, reserved | {s.doc_id for s in samples})
        return key, samples

    def _check_disjoint(self, model: str, recipe: Component, sequences: list[TrainSample], role: str, sequences_key: str) -> None:
        """No eval context or reference of any eval dataset overlaps these sequences (recorded for the manifest).

        The verdict is a stage of its own: a warm run reuses it instead of loading the model for its codec's
        special tokens and scanning again (the key holds the model id, so the codec, through its files)."""
        assert recipe.train is not None
        evals = {d: self.contexts(model, d) for d in self.bench.eval.datasets}
        key = content_key("disjoint", role, sequences_key, {d: k for d, (k, _) in evals.items()},
                          self.bench.eval.overlap_ngram, module_source_hash("harness.sampling"))  # fmt: skip
        checks = self._cached("disjoint", key)
        if checks is None:
            special = self.codec(model).special_token_ids()
            checks = [
                check_disjoint(sequences, contexts, recipe.train["dataset"], special, self.bench.eval.overlap_ngram, role)
                | {"eval_dataset": dataset}
                for dataset, (_, contexts) in evals.items()
            ]
            self._store("disjoint", key, checks)
        self.disjointness.setdefault(f"{model}/{recipe.key}", {})[role] = checks

    def _draw_heldout(self, model: str, recipe: Component, train_key: str, excluded: set[str]) -> list[TrainSample]:
        """Held-out sequences for the fit's curve: same dataset and length, documents used nowhere else."""
        assert recipe.train is not None
        wanted = recipe.train.get("heldout", 0)
        if not wanted:
            return []
        dataset = recipe.train["dataset"]
        key = content_key("heldout", train_key, wanted)
        stored = self._cached("heldout", key)
        if stored is None:
            drawn = draw_heldout(self.tokenized(model, dataset), dataset, excluded, wanted, recipe.train["tokens"], self.bench.seed)
            stored = [s.to_json() for s in drawn]
            self._store("heldout", key, stored)
        if len(stored) < wanted:
            self.reporter.log(
                f"recipe {recipe.key}: only {len(stored)} of train.heldout {wanted} held-out sequences fit in dataset "
                f'"{dataset}" outside the training and eval documents; its curve uses those'
            )
        heldout = [TrainSample(**s) for s in stored]
        self._check_disjoint(model, recipe, heldout, "held-out", key)
        return heldout

    def heldout(self, model: str, recipe_key: str) -> list[TrainSample]:
        return self._heldout.get((model, recipe_key), [])

    def fit_key(self, model: str, recipe: Component) -> tuple[str, list[TrainSample] | None]:
        """The fit stage key and training sequences of (model, recipe); drawn and checked once per run."""
        memo = self._fit_keys.get((model, recipe.key))
        if memo is None:
            memo = self._fit_keys[(model, recipe.key)] = self._draw_fit_key(model, recipe)
        return memo

    def _draw_fit_key(self, model: str, recipe: Component) -> tuple[str, list[TrainSample] | None]:
        """The fit key: model, the recipe's result-deciding params, training data, seed (and the held-out
        sequences for a recipe that selects its weights on them). Logging/checkpoint params stay out."""
        identity = recipe.identity()
        if recipe.train is None:
            key = content_key("fit", self.model_id(model), identity, self.bench.seed)
            self.stage_keys["fit"][f"{model}/{recipe.key}"] = key
            return key, None
        train_key, samples = self.training(model, recipe)
        # the training set itself (not its dataset's name or path): what the data order is derived from
        self._training_sets[(model, recipe.key)] = content_key("training-set", [s.token_ids for s in samples])
        extra: list[Any] = []
        if recipe.registration.cls.selects_on_heldout:
            extra = [[s.to_json() for s in self.heldout(model, recipe.key)]]
        else:
            identity["train"] = recipe.training_draw()
        key = content_key("fit", self.model_id(model), identity, train_key, self.bench.seed, *extra)
        self.stage_keys["fit"][f"{model}/{recipe.key}"] = key
        return key, samples

    def fitted_handle(self, model: str, recipe: Component, fit_key: str, samples: list[TrainSample] | None) -> ModelHandle:
        """The model with the recipe applied: stored weights if this fit exists, else trained now.

        A recipe that trains reuses the loaded base model in place (no second copy in memory).
        """
        trains = samples is not None and recipe.registration.cls.trains
        wanted = (model, recipe.key if trains else None)
        if self._handle is not None and self._handle_id == wanted:
            return self._handle
        handle = self._handle if self._handle_id == (model, None) and self._handle is not None else self._load(model)
        if trains:
            assert samples is not None
            self._handle_id = None  # weights are about to change: never serve this object as the base model
            fitted = False
            if not self._fit_stored(fit_key):
                with self._stage_lock("fit", fit_key, f"fit {model}/{recipe.key}"):
                    if not self._fit_stored(fit_key):  # another run may have stored it while we waited
                        self._fit(model, recipe, recipe.instantiate(), handle, fit_key, samples)
                        fitted = True
            if not fitted:
                handle.load_weights(self.cache.directory("fits", fit_key))
                self._count("fit", True)
        self._handle, self._handle_id = handle, wanted
        return handle

    @contextlib.contextmanager
    def _try_stage_lock(self, stage: str, key: str) -> Iterator[bool]:
        if distributed.is_distributed():
            yield True
            return
        with self.cache.try_lock(stage, key) as mine:
            yield mine

    def _fit_stored(self, fit_key: str) -> bool:
        return self._cached("fit", fit_key) is not None and self.cache.directory("fits", fit_key).exists()

    @contextlib.contextmanager
    def _stage_lock(self, stage: str, key: str, what: str) -> Iterator[None]:
        """Hold the stage's lock so a second run on this cache waits and reuses instead of computing it too.

        Inside a multi-process launch the processes of one fit work together, so no file lock is taken
        there (a lock per process would deadlock the collective calls)."""
        if distributed.is_distributed():
            yield
            return

        def waiting(path: Path) -> None:
            self.reporter.log(f"{what}: another run on this cache is computing it; waiting for it (lock {path})")

        with self.cache.lock(stage, key, on_wait=waiting):
            yield

    def _fit(self, model: str, recipe: Component, plugin: Any, handle: ModelHandle, fit_key: str, samples: list[TrainSample]) -> None:
        started = time.perf_counter()
        curves: list[dict[str, float]] = []
        work = self.cache.root / "work" / fit_key
        if self.options.fresh and distributed.is_main():
            shutil.rmtree(work, ignore_errors=True)  # --fresh: no resuming from an earlier checkpoint either
        work.mkdir(parents=True, exist_ok=True)
        with self.reporter.task(f"fit {model}/{recipe.key}", total=1) as task:

            def progress(done: int, total: int, info: dict[str, float]) -> None:
                task.total = total
                if task._id is not None:
                    self.reporter._progress.update(task._id, total=total)
                task.update(done, info)

            ctx = FitContext(
                # from the run seed and the training set alone: two recipes on the same data see one order
                seed=derive_seed(self.bench.seed, "fit", self._training_sets[(model, recipe.key)]),
                work_dir=work,
                progress=progress,
                curve=curves.append,
                heldout=[s.token_ids for s in self.heldout(model, recipe.key)],
            )
            try:
                outcome = plugin.fit(handle, [s.token_ids for s in samples], ctx)
            except HarnessError:
                raise
            except Exception as exc:
                raise RunError(f"recipe {recipe.key} ({recipe.plugin}) failed on model {model}: {type(exc).__name__}: {exc}") from exc
        if not distributed.is_main():
            self._count("fit", False)
            return  # the main process stores the fit; the others only helped to train it
        staging = self.cache.staging_directory("fits", fit_key)
        handle.save_weights(staging)
        self.cache.commit_directory("fits", fit_key, staging)
        self._store("curves", fit_key, curves)
        info = {"seconds": time.perf_counter() - started, "sequences": len(samples), "logged_with": recipe.logging_params()}
        self._store("fit", fit_key, info | (outcome if isinstance(outcome, dict) else {}))
        self._timed("fit", started)
        self._count("fit", False)

    def generate(
        self, cell: Cell, fit_key: str, samples: list[TrainSample] | None, dataset: str, contexts_key: str, contexts: list[EvalContext]
    ) -> tuple[str, list[dict[str, Any]]]:
        """Generate for one cell and eval dataset, batch by batch; each batch is stored when done."""
        decoder = self.bench.decoders[cell.decoder]
        spec = self.bench.eval
        new_tokens = self.eval_lengths(cell.model)[1]
        gen_key = content_key(
            "generate", fit_key, decoder.identity(), contexts_key, new_tokens, self.bench.seed, {"stop_at_eos": spec.stop_at_eos}
        )
        self.stage_keys["generate"][f"{cell.id}/{dataset}"] = gen_key
        chosen = contexts[: self.options.limit] if self.options.limit else contexts
        draws = 1 if decoder.registration.cls.deterministic else spec.samples_per_prompt
        rows = [(c, k) for c in chosen for k in range(draws)]  # one row per (prompt, sample index)
        size = self.batch_size(cell.model)
        batches = [rows[i : i + size] for i in range(0, len(rows), size)]
        records: list[dict[str, Any]] = []
        missing = []
        for batch in batches:
            batch_key = content_key(gen_key, [c.prompt_id if k == 0 else f"{c.prompt_id}#{k}" for c, k in batch])
            stored = self._cached("generate", batch_key)
            if stored is None:
                missing.append((batch_key, batch))
            else:
                records.extend(stored)
                self._count("generate", True)
        if missing:
            recipe = self.bench.recipes[cell.recipe]
            handle = self.fitted_handle(cell.model, recipe, fit_key, samples)
            plugin = decoder.instantiate()
            started = time.perf_counter()
            done = len(batches) - len(missing)
            train_sequences = [s.token_ids for s in samples] if samples else None  # one list for every batch
            def run_batch(batch_key: str, batch: list[tuple[EvalContext, int]]) -> None:
                stored = self._cached("generate", batch_key)  # another run on this cache may have made it
                if stored is not None:
                    records.extend(stored)
                    self._count("generate", True)
                    return
                seeds = [derive_seed(self.bench.seed, c.prompt_id, k) for c, k in batch]
                ctx = DecodeContext(seeds=seeds, train_sequences=train_sequences, stop_at_eos=spec.stop_at_eos)
                try:
                    gens = plugin.generate(handle, [c.context_ids for c, _ in batch], new_tokens, ctx)
                except HarnessError:
                    raise
                except Exception as exc:
                    raise RunError(
                        f"decoder {cell.decoder} ({decoder.plugin}) failed in cell {cell.id} on {dataset}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                batch_records = [
                    self._record(handle, c, g, seed, k if draws > 1 else None) for (c, k), g, seed in zip(batch, gens, seeds)
                ]
                self._store("generate", batch_key, batch_records)
                records.extend(batch_records)
                self._count("generate", False)

            with self.reporter.task(f"generate {cell.id} on {dataset}", total=len(batches)) as task:
                task.update(done)
                held_elsewhere = []  # batches another run is generating now: do the free ones first, then wait
                for batch_key, batch in missing:
                    with self._try_stage_lock("generate", batch_key) as mine:
                        if not mine:
                            held_elsewhere.append((batch_key, batch))
                            continue
                        run_batch(batch_key, batch)
                    done += 1
                    task.update(done)
                for batch_key, batch in held_elsewhere:
                    with self._stage_lock("generate", batch_key, f"generate {cell.id} on {dataset}"):
                        run_batch(batch_key, batch)
                    done += 1
                    task.update(done)
            self._timed("generate", started)
        order = {c.prompt_id: i for i, c in enumerate(chosen)}
        records.sort(key=lambda r: (order[r["prompt_id"]], r.get("sample_idx", 0)))
        for record in records:  # the drawn reference tokens (re-encoding reference_text may not give them back)
            record["reference_ids"] = list(chosen[order[record["prompt_id"]]].reference_ids)
        return gen_key, records

    @staticmethod
    def _record(handle: ModelHandle, ctx: EvalContext, gen: Any, seed: int, sample_idx: int | None) -> dict[str, Any]:
        codec = handle.codec
        record: dict[str, Any] = {
            "prompt_id": ctx.prompt_id,
            "dataset": ctx.dataset,
            "context_ids": ctx.context_ids,
            "context_text": codec.decode(ctx.context_ids),
            "output_ids": list(gen.output_ids),
            "output_text": codec.decode(gen.output_ids),
            "reference_text": codec.decode(ctx.reference_ids),
            "seed": seed,
            "step_entropy": [round(float(x), 5) for x in gen.step_entropy],
            "step_top1": [round(float(x), 5) for x in gen.step_top1],
        }
        if sample_idx is not None:  # only with eval.samples_per_prompt > 1 and a sampling decoder
            record["sample_idx"] = sample_idx
        if getattr(gen, "stopped_at_eos", False):  # only under eval.stop_at_eos: the row is shorter than new_tokens
            record["stopped_at_eos"] = True
        if ctx.label is not None:
            record["label"] = ctx.label
        if getattr(codec, "modality", "text") == "image":
            record["image_shape"] = [int(codec.height), int(codec.width)]  # type: ignore[attr-defined]
        for name, value in (getattr(gen, "extras", None) or {}).items():  # a decoder's per-row facts
            if name in record or name in SAMPLE_FIELDS or name in OPTIONAL_SAMPLE_FIELDS:
                raise RunError(f"a decoder reported the extra {name!r}, which would overwrite a core record field")
            record[name] = value
        return record

    def batch_size(self, model: str) -> int:
        """eval.batch_size, or for "auto" the largest power of two whose full-length forward fits the GPU.

        The probe result is stored per (model, device, lengths), so a warm run loads nothing. On a CPU
        "auto" means 8: memory is rarely the limit there and larger batches are not faster.
        """
        spec = self.bench.eval
        if isinstance(spec.batch_size, int):
            return spec.batch_size
        if not self.device.startswith("cuda"):
            return 8
        import torch

        length = sum(self.eval_lengths(model))
        if getattr(self.bench.models[model].registration.cls, "modality", "text") == "image":
            length -= 1  # the last pixel is predicted, never fed: SOS + H·W tokens need only H·W positions
        key = content_key("batch-size", self.model_id(model), torch.cuda.get_device_name(self.device), length)
        stored = self.cache.get("batch-size", key)
        if stored is None:
            loaded = self._handle is not None and self._handle_id is not None and self._handle_id[0] == model
            handle = self._handle if loaded else self._load(model)
            assert handle is not None
            stored = {"batch_size": probe_batch_size(handle, length)}
            self.cache.put("batch-size", key, stored)
            self.reporter.log(f"batch size auto: {stored['batch_size']} for {model} at {length} tokens")
        return int(stored["batch_size"])

    def metric_context(self, cell: Cell, fit_key: str, samples: list[TrainSample] | None) -> MetricContext:
        recipe = self.bench.recipes[cell.recipe]

        def model_for(recipe_key: str) -> ModelHandle:
            other = self.recipe(recipe_key)
            return self.fitted_handle(cell.model, other, *self.fit_key(cell.model, other))

        return MetricContext(
            train_sequences=[s.token_ids for s in samples] if samples else None,
            codec=self._codecs.get(cell.model),
            model=lambda: self.fitted_handle(cell.model, recipe, fit_key, samples),
            cache_dir=self.cache.root / "features",
            model_key=fit_key,
            model_for=model_for,
        )

    def recipe(self, key: str) -> Component:
        if key not in self.bench.recipes:
            raise InputError(f'a metric refers to recipe "{key}", which {self.bench.path} does not define')
        return self.bench.recipes[key]

    def score(
        self, cell: Cell, dataset: str, gen_key: str, records: list[dict[str, Any]], context: MetricContext
    ) -> list[ScoreRow]:
        rows = []
        with self.reporter.task(f"score {cell.id} on {dataset}", total=len(self.bench.metrics)) as task:
            for done, (metric_key, metric) in enumerate(self.bench.metrics.items(), start=1):
                row, computed = self._score_one(cell, dataset, gen_key, records, metric_key, metric, context)
                rows.append(row)
                if computed:
                    task.update(done)
        return rows

    def _score_one(
        self,
        cell: Cell,
        dataset: str,
        gen_key: str,
        records: list[dict[str, Any]],
        metric_key: str,
        metric: Component,
        context: MetricContext,
    ) -> tuple[ScoreRow, bool]:
        plugin = metric.instantiate()
        plugin.context = context
        dependencies = [self.fit_key(cell.model, self.recipe(k))[0] for k in plugin.recipe_dependencies()]
        key = content_key(
            "score", gen_key, [r["prompt_id"] for r in records], metric.identity(), self.bench.eval.bootstrap, self.bench.seed,
            module_source_hash("harness.scoring"),  # the interval code (harness.stats) is part of every score
            *([dependencies] if dependencies else []),
        )  # fmt: skip
        self.stage_keys["score"][f"{cell.id}/{dataset}/{metric_key}"] = key
        computed = False
        stored = self._cached("score", key)
        if stored is None:
            with self._stage_lock("score", key, f"score {cell.id} on {dataset} with {metric_key}"):
                stored = self._cached("score", key)  # another run on this cache may have stored it meanwhile
                if stored is None:
                    stored = self._compute_score(plugin, cell, dataset, metric_key, metric, records)
                    self._store("score", key, stored)
                    computed = True
        self._count("score", not computed)
        stored = dict(stored)
        per_draw = stored.pop("draws", None)
        if per_draw:
            self.seed_spread.append(SpreadRow(cell.model, cell.recipe, cell.decoder, dataset, metric_key, per_draw))
        return ScoreRow(cell.model, cell.recipe, cell.decoder, dataset, metric_key, **stored), computed

    def _compute_score(
        self, plugin: Any, cell: Cell, dataset: str, metric_key: str, metric: Component, records: list[dict[str, Any]]
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            interval = score_metric(plugin, records, self.bench.eval.bootstrap, derive_seed(self.bench.seed, "bootstrap", metric_key))
        except HarnessError:
            raise
        except Exception as exc:
            raise RunError(
                f"metric {metric_key} ({metric.plugin}) failed on cell {cell.id}, dataset {dataset}: {type(exc).__name__}: {exc}"
            ) from exc
        stored: dict[str, Any] = {"value": interval.value, "ci_low": interval.ci_low, "ci_high": interval.ci_high,
                                  "n": interval.n, "interval": interval.method, "warning": interval.warning}  # fmt: skip
        draws = sorted({r["sample_idx"] for r in records if "sample_idx" in r})
        if len(draws) > 1:  # seed spread: the metric on each draw's continuations, apart from the CI
            stored["draws"] = [point_value(plugin, [r for r in records if r.get("sample_idx") == k]) for k in draws]
        self._timed("score", started)
        return stored

    # ------------------------------------------------------------------ the whole run

    def _groups(self) -> Iterator[tuple[str, str, list[Cell]]]:
        groups: dict[tuple[str, str], list[Cell]] = {}
        for cell in self.bench.cells:
            groups.setdefault((cell.model, cell.recipe), []).append(cell)
        for (model, recipe), cells in groups.items():
            yield model, recipe, cells

    def fit_all(self) -> None:
        """Train every fit of the benchmark first: in a multi-process launch all processes do this together."""
        for model, recipe_key, _ in self._groups():
            recipe = self.bench.recipes[recipe_key]
            fit_key, samples = self.fit_key(model, recipe)
            if samples is not None and recipe.registration.cls.trains:
                self.fitted_handle(model, recipe, fit_key, samples)

    def run(self) -> RunSummary:
        started = time.perf_counter()
        name = self.bench.name if not self.options.limit else f"{self.bench.name}-limit{self.options.limit}"
        writer = ResultsWriter(self.options.results_root / name)
        scores: list[ScoreRow] = []
        if distributed.is_distributed():
            self.fit_all()
            if not distributed.is_main():
                self._release()
                return RunSummary(writer.root, [], dict(self.timings), dict(self.computed), dict(self.reused))
        for model, recipe_key, cells in self._groups():
            recipe = self.bench.recipes[recipe_key]
            fit_key, samples = self.fit_key(model, recipe)
            if samples is not None:
                writer.write_train_samples(model, recipe_key, samples)
                if self.heldout(model, recipe_key):
                    writer.write_train_samples(model, recipe_key, self.heldout(model, recipe_key), "heldout_samples.jsonl")
            for cell in cells:
                cell_records: list[dict[str, Any]] = []
                for dataset in self.bench.eval.datasets:
                    contexts_key, contexts = self.contexts(model, dataset)
                    gen_key, records = self.generate(cell, fit_key, samples, dataset, contexts_key, contexts)
                    cell_records.extend(records)
                    scores.extend(self.score(cell, dataset, gen_key, records, self.metric_context(cell, fit_key, samples)))
                writer.write_generations(cell, cell_records)
            curves = self.cache.get("curves", fit_key) if samples is not None else None
            if curves:
                writer.write_curves(model, recipe_key, curves)
                logged = (self.cache.get("fit", fit_key) or {}).get("logged_with")
                if logged is not None and logged != recipe.logging_params():
                    self.reporter.log(
                        f"recipe {recipe_key}: the stored fit was logged with {logged}; its curves.csv shows that "
                        "cadence (logging params do not retrain a fit; --fresh does)"
                    )
        self._release()
        self.timings["total"] = time.perf_counter() - started
        summary = RunSummary(writer.root, scores, dict(self.timings), dict(self.computed), dict(self.reused))
        writer.finish(self.bench, self, summary)
        return summary


def probe_batch_size(handle: ModelHandle, length: int, start: int = 256) -> int:
    """Largest power of two ≤ start for which a cached forward pass over `length` tokens fits, halved for
    headroom (sampling buffers, fragmentation)."""
    import torch

    module = handle.module
    device = next(module.parameters()).device
    size = start
    while size >= 1:
        try:
            with torch.inference_mode():
                ids = torch.zeros((size, length), dtype=torch.long, device=device)
                module(input_ids=ids, use_cache=True)
            torch.cuda.synchronize(device)
            return max(1, size // 2)
        except torch.cuda.OutOfMemoryError:
            size //= 2
        finally:
            torch.cuda.empty_cache()
    raise RunError(f"batch size auto: not even one sequence of {length} tokens fits on {device}")


def describe_counts(summary: RunSummary) -> str:
    stages = sorted(set(summary.computed) | set(summary.reused))
    parts = [f"{s} {summary.computed.get(s, 0)} run/{summary.reused.get(s, 0)} reused" for s in stages]
    return ", ".join(parts)

