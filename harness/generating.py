"""The generate phase: continue every planned (cell, eval dataset), batch by batch.

Each batch is a stage of its own (keyed by the generate key and its rows), stored when done: a killed
run loses at most the batch in progress. A batch another run on the same cache is generating now is
skipped and waited for at the end. Seeds come from (run seed, prompt id, draw index), so a
continuation never depends on the batch it ran in.
"""

from __future__ import annotations

from typing import Any

from harness.api import OPTIONAL_SAMPLE_FIELDS, SAMPLE_FIELDS, DecodeContext, ModelHandle
from harness.config import Benchmark
from harness.data_plan import GenerationPlan
from harness.errors import HarnessError, RunError
from harness.model_pool import ModelPool
from harness.sampling import EvalContext, derive_seed
from harness.stages import StageBook
from harness.store import content_key

#: batch size of eval.batch_size "auto" on a CPU: memory is rarely the limit there and larger batches are not faster
CPU_AUTO_BATCH = 8


class Generator:
    def __init__(self, bench: Benchmark, book: StageBook, pool: ModelPool):
        self.bench = bench
        self.book = book
        self.pool = pool
        self._decoders: dict[str, Any] = {}  # one instance per decoder for the run (it may keep an index)
        self._made: set[str] = set()  # batch keys this process generated (counted once, as computed)
        self._vllm_runner: Any = None  # harness.vllm_backend.VllmRunner, started by the first vLLM batch

    def batches(self, plan: GenerationPlan) -> list[tuple[str, list[tuple[EvalContext, int]]]]:
        """The (stage key, rows) of every batch of one (cell, dataset), in order."""
        size = self.batch_size(plan)
        rows = [plan.rows[i : i + size] for i in range(0, len(plan.rows), size)]
        return [(content_key(plan.key, [c.prompt_id if k == 0 else f"{c.prompt_id}#{k}" for c, k in batch]), batch) for batch in rows]

    def generate_share(self, plans: list[GenerationPlan], rank: int, world: int) -> tuple[int, int]:
        """Data-parallel generation: this process's share of every batch of ``plans``, stored in the cache.

        The batches of all plans, in plan order, are dealt round-robin: batch i belongs to process i % world.
        The assignment depends only on the plan, so every process computes the same one without talking to
        the others, and a rerun after a crash finds each finished batch stored. Returns (generated, reused).
        """
        mine = [(plan, key, batch) for plan in plans for key, batch in self.batches(plan)][rank::world]
        made = reused = 0
        if not mine:
            return made, reused
        with self.book.timed("generate"), self.book.reporter.task(f"generate (process {rank} of {world})", total=len(mine)) as task:
            for done, (plan, key, batch) in enumerate(mine, 1):
                if self.book.get("generate", key) is None:
                    self._batch(plan, key, batch)
                    made += 1
                else:
                    reused += 1
                task.update(done)
        return made, reused

    def generate(self, plan: GenerationPlan) -> list[dict[str, Any]]:
        """The records of one (cell, dataset), in context order (draws of a prompt together)."""
        batches = self.batches(plan)
        records: list[dict[str, Any]] = []
        missing = []
        for key, batch in batches:
            stored = self.book.get("generate", key)
            if stored is None:
                missing.append((key, batch))
            else:
                records.extend(stored)
                if key not in self._made:
                    self.book.count("generate", True)
        if missing:
            what = f"generate {plan.cell.id} on {plan.dataset}"
            with self.book.timed("generate"), self.book.reporter.task(what, total=len(batches)) as task:
                done = len(batches) - len(missing)
                task.update(done)
                held_elsewhere = []  # batches another run is generating now: do the free ones first, then wait
                for key, batch in missing:
                    with self.book.try_lock("generate", key) as mine:
                        if not mine:
                            held_elsewhere.append((key, batch))
                            continue
                        records.extend(self._batch(plan, key, batch))
                    done += 1
                    task.update(done)
                for key, batch in held_elsewhere:
                    with self.book.lock("generate", key, what):
                        records.extend(self._batch(plan, key, batch))
                    done += 1
                    task.update(done)
        order = {c.prompt_id: i for i, (c, _) in enumerate(plan.rows)}
        by_prompt = {c.prompt_id: c for c, _ in plan.rows}
        records.sort(key=lambda r: (order[r["prompt_id"]], r.get("sample_idx", 0)))
        for record in records:  # the drawn reference tokens (re-encoding reference_text may not give them back)
            record["reference_ids"] = list(by_prompt[record["prompt_id"]].reference_ids)
        return records

    def _batch(self, plan: GenerationPlan, key: str, batch: list[tuple[EvalContext, int]]) -> list[dict[str, Any]]:
        stored = self.book.get("generate", key)  # another run on this cache may have made it meanwhile
        if stored is not None:
            self.book.count("generate", True)
            return stored
        decoder = self.bench.decoders[plan.cell.decoder]
        handle = self.pool.fitted(plan.cell.model, plan.fit.weights_key)
        seeds = [derive_seed(self.bench.seed, c.prompt_id, k) for c, k in batch]
        ctx = DecodeContext(
            seeds=seeds, train_sequences=plan.fit.train_sequences, stop_at_eos=self.bench.eval.stop_at_eos,
            load_fitted=lambda name: self.pool.separate(plan.cell.model, plan.read(name).weights_key),
            heldout_of=lambda name: [s.token_ids for s in plan.read(name).heldout],
            weights_key=plan.fit.weights_key or self.pool.model_id(plan.cell.model),
        )  # fmt: skip
        contexts = [c.context_ids for c, _ in batch]
        try:
            if decoder.backend == "vllm":
                gens = self._vllm(plan).generate(handle, self._decoder(plan), contexts, plan.new_tokens, ctx)
            else:
                gens = self._decoder(plan).generate(handle, contexts, plan.new_tokens, ctx)
        except HarnessError:
            raise
        except Exception as exc:
            raise RunError(
                f"decoder {plan.cell.decoder} ({decoder.plugin}) failed in cell {plan.cell.id} on {plan.dataset}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        several = plan.samples_per_prompt > 1
        records = [build_record(handle, c, g, seed, k if several else None) for (c, k), g, seed in zip(batch, gens, seeds)]
        self.book.put("generate", key, records)
        self.book.count("generate", False)
        self._made.add(key)
        return records

    def _vllm(self, plan: GenerationPlan) -> Any:
        """The vLLM runner of this run (one worker process, its engine reloaded only when the weights change)."""
        if self._vllm_runner is None:
            from harness.vllm_backend import VllmRunner

            self._vllm_runner = VllmRunner(self.book.cache.root / "vllm-models")
        self._vllm_runner.use(self.pool.model_id(plan.cell.model), plan.fit.weights_key)
        return self._vllm_runner

    def close(self) -> None:
        """Stop the vLLM worker, if one was started."""
        if self._vllm_runner is not None:
            self._vllm_runner.close()
            self._vllm_runner = None

    def _decoder(self, plan: GenerationPlan) -> Any:
        name = plan.cell.decoder
        if name not in self._decoders:
            self._decoders[name] = self.bench.decoders[name].instantiate()
        return self._decoders[name]

    def batch_size(self, plan: GenerationPlan) -> int:
        """eval.batch_size, or for "auto" the largest power of two whose full-length forward fits the GPU.

        The probe result is stored per (model, device, lengths), so a warm run loads nothing.
        """
        spec = self.bench.eval
        if isinstance(spec.batch_size, int):
            return spec.batch_size
        if not self.pool.device.startswith("cuda"):
            return CPU_AUTO_BATCH
        import torch

        model = plan.cell.model
        context_tokens = len(plan.rows[0][0].context_ids) if plan.rows else 0
        length = context_tokens + plan.new_tokens - 1  # the last token is never fed back
        key = content_key("batch-size", self.pool.model_id(model), torch.cuda.get_device_name(self.pool.device), length)
        stored = self.book.cache.get("batch-size", key)
        if stored is None:
            stored = {"batch_size": probe_batch_size(self.pool.fitted(model, plan.fit.weights_key), length)}
            self.book.cache.put("batch-size", key, stored)
            self.book.reporter.log(f"batch size auto: {stored['batch_size']} for {model} at {length} tokens")
        return int(stored["batch_size"])


def build_record(handle: ModelHandle, ctx: EvalContext, gen: Any, seed: int, sample_idx: int | None) -> dict[str, Any]:
    """One generations.jsonl row: the context, the continuation, the raw per-step statistics, the codec's and
    the decoder's extras."""
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
    record.update(codec.record_extras())
    for name, value in (getattr(gen, "extras", None) or {}).items():  # a decoder's per-row facts
        if name in record or name in SAMPLE_FIELDS or name in OPTIONAL_SAMPLE_FIELDS:
            raise RunError(f"a decoder reported the extra {name!r}, which would overwrite a core record field")
        record[name] = value
    return record


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
