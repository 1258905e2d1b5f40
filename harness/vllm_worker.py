"""The vLLM side of the optional vLLM generation backend: run by the *vLLM venv's* python, never imported by ours.

    <vllm-venv>/bin/python harness/vllm_worker.py REQUEST.json RESPONSE.json     (one request, then exit)
    <vllm-venv>/bin/python harness/vllm_worker.py --serve                         (many; the engine stays loaded)

Self-contained on purpose (standard library + vllm + torch): it imports nothing from ``harness``, whose
dependencies live in the other venv. ``harness/vllm_backend.py`` writes the request, runs this script and
reads the response.

Request (JSON)::

    {"model_dir": "/path/to/transformers/folder",        # config.json + tokenizer + safetensors weights
     "dtype": "float32" | "bfloat16",
     "max_model_len": 288,
     "requests": [{"prompt_token_ids": [...], "seed": 17}, ...],
     "sampling": {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0,
                  "repetition_penalty": 1.0, "max_tokens": 224},
     "eos_id": 2 | null,
     "stop_at_eos": false,
     "citation_window": null | 5,                        # the citation blocker's k
     "citation_include_context": false,
     "citation_word_starts": null | [ids...],            # word_boundary: only these tokens may be banned
     "train_sequences": null | [[...], ...],
     "enforce_eager": null | bool,                       # null: eager on a CPU, compiled/graphs elsewhere
     "runs": null | [{"requests": [...]}, ...]}          # optional: several timed batches on one engine load

Response (JSON)::

    {"outputs": [[ids...], ...], "stopped_at_eos": [bool, ...], "extras": [{...}, ...],
     "seconds": {"load": x, "generate": y}, "vllm_version": "0.32.0", "runs": [...] (when asked)}

How our loop's rules are kept (see docs/vllm.md):

* EOS policy, ``stop_at_eos`` false: ``ignore_eos=True`` (the row does not stop) and this file's logits
  processor sets the EOS logit to -inf before anything else applies, so EOS is never chosen, whatever the
  sampler; every row gets exactly ``max_tokens`` tokens. True: the row stops at EOS, which is dropped.
* seeds: ``SamplingParams(seed=...)`` per row (a per-request generator inside vLLM).
* citation blocking: the same logits processor looks up the row's last k tokens (generated only, or context +
  generated) in an index of the training sequences and sets every follower's logit to -inf; it counts the
  steps at which that removed the row's most likely token (``blocked_steps``). The index is built here once per
  call and shared by every row; the engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so the
  processor can read it and the counts can be read back.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

#: set before vllm is imported: the engine core in this process (the processor reads this module's globals)
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# vLLM's automatic CPU binding keeps one core for a scheduler process (on 2 cores: half the machine) and pins
# each OpenMP thread to one core; the engine runs in this process, and pinned threads collapse when another
# process shares the cores (measured on 2 cores under load: 3x slower than unpinned). Unpinned, torch uses
# every core. VLLM_CPU_OMP_THREADS_BIND set by the caller wins.
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")

#: what the processor reads; filled by :func:`main` before the engine starts
RULES: dict[str, Any] = {"eos": None, "index": None, "order": 0, "word_starts": None, "include_context": False}
#: blocked-step counts per request tag (survive a request being re-added to the batch after a preemption)
BLOCKED: dict[str, int] = {}


def build_index(sequences: list[list[int]], order: int) -> dict[tuple[int, ...], frozenset[int]]:
    """k-gram (a tuple of ``order`` ids) → the set of ids that follow it somewhere in ``sequences``."""
    table: dict[tuple[int, ...], set[int]] = {}
    for seq in sequences:
        for end in range(order, len(seq)):
            table.setdefault(tuple(seq[end - order : end]), set()).add(seq[end])
    return {key: frozenset(value) for key, value in table.items()}


def window(prompt: list[int], output: list[int], order: int, include_context: bool) -> tuple[int, ...] | None:
    """The row's last ``order`` tokens (output only unless ``include_context``); None when there are too few."""
    if len(output) >= order:
        return tuple(output[len(output) - order :])
    if not include_context or len(prompt) + len(output) < order:
        return None
    need = order - len(output)
    return tuple(prompt[len(prompt) - need :]) + tuple(output)


class RowRule:
    """One request's rules at each step: EOS suppressed (fixed length), then the citation ban."""

    def __init__(self, tag: str, suppress_eos: bool, citation: bool):
        self.tag = tag
        self.suppress_eos = suppress_eos
        self.citation = citation

    def __call__(self, prompt: list[int], output: list[int], logits: Any) -> Any:
        eos = RULES["eos"]
        if self.suppress_eos and eos is not None:
            logits[eos] = float("-inf")
        if self.citation:
            followers = RULES["index"].get(window(prompt, output, RULES["order"], RULES["include_context"]))
            if followers:
                starts = RULES["word_starts"]
                banned = [t for t in followers if starts is None or t in starts]
                if banned:
                    if int(logits.argmax()) in banned:
                        BLOCKED[self.tag] = BLOCKED.get(self.tag, 0) + 1
                    logits[banned] = float("-inf")
        return logits


def processor_class() -> type:
    """The engine-level logits processor (vLLM's per-request adapter), built once vllm is importable."""
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class HarnessRules(AdapterLogitsProcessor):
        """Applies each request's :class:`RowRule` (from ``SamplingParams.extra_args["harness"]``)."""

        def is_argmax_invariant(self) -> bool:
            return False  # it bans tokens: runs before penalties, temperature and truncation, greedy included

        def new_req_logits_processor(self, params: Any) -> Any:
            spec = (params.extra_args or {}).get("harness")
            if not spec or not (spec.get("suppress_eos") or spec.get("citation")):
                return None
            return RowRule(str(spec["tag"]), bool(spec.get("suppress_eos")), bool(spec.get("citation")))

    return HarnessRules


def kv_cache_gib(model_dir: Path, dtype: str, tokens: int) -> int:
    """GiB of KV cache for ``tokens`` tokens of this model (from its config.json), with room to spare."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        heads = config.get("num_key_value_heads") or config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        per_token = 2 * config["num_hidden_layers"] * heads * head_dim * (4 if dtype == "float32" else 2)
    except (OSError, KeyError, ValueError, TypeError, ZeroDivisionError):
        return 4
    return max(1, math.ceil(1.5 * per_token * tokens / 2**30))


def sampling_params(sampling: dict[str, Any], row: dict[str, Any], tag: str, request: dict[str, Any]) -> Any:
    from vllm import SamplingParams

    stop_at_eos = bool(request.get("stop_at_eos"))
    eos = request.get("eos_id")
    citation = request.get("citation_window") is not None
    fields = dict(sampling)
    fields.update(
        seed=int(row.get("seed", 0)) % (2**63),
        ignore_eos=not stop_at_eos,
        stop_token_ids=[eos] if stop_at_eos and eos is not None else None,
        extra_args={"harness": {"tag": tag, "suppress_eos": not stop_at_eos and eos is not None, "citation": citation}},
        detokenize=False,
        skip_special_tokens=False,
    )
    return SamplingParams(**fields)


def run_batch(llm: Any, rows: list[dict[str, Any]], request: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Generate every row of one batch; the outputs in row order, EOS dropped, and the batch's wall time."""
    tags = [f"{prefix}{i}" for i in range(len(rows))]
    params = [sampling_params(request["sampling"], row, tag, request) for row, tag in zip(rows, tags)]
    prompts = [{"prompt_token_ids": [int(t) for t in row["prompt_token_ids"]]} for row in rows]
    started = time.perf_counter()
    results = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    eos = request.get("eos_id")
    outputs, stopped = [], []
    for result in results:  # vLLM returns them in the order given
        ids = [int(t) for t in result.outputs[0].token_ids]
        ended = bool(request.get("stop_at_eos")) and eos is not None and eos in ids
        outputs.append(ids[: ids.index(eos)] if ended else ids)
        stopped.append(ended)
    extras = [{"blocked_steps": BLOCKED.get(tag, 0)} if request.get("citation_window") is not None else {} for tag in tags]
    return {"outputs": outputs, "stopped_at_eos": stopped, "extras": extras, "generate_s": seconds}


def set_rules(request: dict[str, Any]) -> None:
    """What the logits processor applies to this request's rows (the citation index is built here, once)."""
    BLOCKED.clear()
    RULES.update(eos=request.get("eos_id"), index=None, order=0, include_context=False, word_starts=None)
    if request.get("citation_window") is not None:
        order = int(request["citation_window"])
        starts = request.get("citation_word_starts")
        RULES.update(
            index=build_index(request.get("train_sequences") or [], order),
            order=order,
            include_context=bool(request.get("citation_include_context")),
            word_starts=frozenset(starts) if starts is not None else None,
        )


class Engine:
    """One vLLM engine, rebuilt only when a request needs other weights, another dtype or mode, or more room."""

    def __init__(self) -> None:
        self.llm: Any = None
        self.key: tuple[Any, ...] | None = None
        self.room = (0, 0)  # (max_model_len, max_num_seqs) it was built with
        self.eager = True
        self.user_kv = "VLLM_CPU_KVCACHE_SPACE" in os.environ

    def get(self, request: dict[str, Any], runs: list[dict[str, Any]]) -> tuple[Any, float]:
        """The engine for ``request`` and the seconds spent building it now (0 when reused)."""
        from vllm.platforms import current_platform

        model_dir, dtype = Path(request["model_dir"]), request.get("dtype", "float32")
        eager = request.get("enforce_eager")
        if eager is None:  # on a CPU torch.compile adds ~35 s to the load for ~15% more throughput (docs/vllm.md)
            eager = current_platform.is_cpu()
        widest = max(1, max((len(run["requests"]) for run in runs), default=1))
        room = (int(request["max_model_len"]), widest)
        key = (str(model_dir), dtype, bool(eager))
        if self.llm is not None and key == self.key and room[0] <= self.room[0] and room[1] <= self.room[1]:
            return self.llm, 0.0
        if self.llm is not None:
            room = (max(room[0], self.room[0]), max(room[1], self.room[1])) if key == self.key else room
            self.llm = None
            import gc

            gc.collect()
        if not self.user_kv:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gib(model_dir, dtype, room[0] * room[1]))
        started = time.perf_counter()
        from vllm import LLM

        self.llm = LLM(
            model=str(model_dir),
            tokenizer=str(model_dir),
            dtype=dtype,
            max_model_len=room[0],
            max_num_seqs=room[1],
            seed=0,
            enable_prefix_caching=False,  # a row's KV comes from its own prompt, never from another request's
            generation_config="vllm",  # the folder's generation_config.json must not change our sampling params
            logits_processors=[processor_class()],
            enforce_eager=bool(eager),
        )
        self.key, self.room, self.eager = key, room, bool(eager)
        return self.llm, time.perf_counter() - started


def answer(engine: Engine, request: dict[str, Any], number: int) -> dict[str, Any]:
    """Run one request (its ``runs``, or its ``requests`` as one batch) and build the response."""
    import vllm

    runs = request.get("runs") or [{"requests": request["requests"]}]
    set_rules(request)
    llm, load_s = engine.get(request, runs)
    done = [run_batch(llm, run["requests"], request, prefix=f"q{number}-r{n}-") for n, run in enumerate(runs)]
    response: dict[str, Any] = {
        "outputs": done[0]["outputs"],
        "stopped_at_eos": done[0]["stopped_at_eos"],
        "extras": done[0]["extras"],
        "seconds": {"load": load_s, "generate": sum(d["generate_s"] for d in done)},
        "vllm_version": vllm.__version__,
        "enforce_eager": engine.eager,
    }
    if request.get("runs"):
        response["runs"] = done
    return response


def write_json(path: str, value: Any) -> None:
    tmp = Path(path).with_suffix(".partial")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def serve() -> int:
    """Answer requests until stdin closes: one JSON line ``{"request": path, "response": path}`` each, answered
    by the line ``done`` (or ``error``, with the traceback in the response file's ``error``) on the original
    stdout; everything the libraries print goes to stderr. The engine stays loaded between requests."""
    import traceback

    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # vLLM's and torch's prints must not mix with the protocol
    engine = Engine()
    for number, line in enumerate(sys.stdin):
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            request = json.loads(Path(job["request"]).read_text(encoding="utf-8"))
            write_json(job["response"], answer(engine, request, number))
            channel.write("done\n")
        except Exception:  # reported to the caller, who raises; the engine stays up for the next request
            write_json(job["response"], {"error": traceback.format_exc()})
            channel.write("error\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[1] == "--serve":
        return serve()
    if len(argv) != 3:
        print("usage: vllm_worker.py REQUEST.json RESPONSE.json | vllm_worker.py --serve", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    write_json(argv[2], answer(Engine(), request, 0))
    return 0


if __name__ == "__main__":  # vLLM may spawn helper processes that re-import this file: nothing runs on import
    sys.exit(main(sys.argv))
