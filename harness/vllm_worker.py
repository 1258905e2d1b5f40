"""The vLLM side of the optional vLLM generation backend: run by the *vLLM venv's* python, never imported by ours.

    <vllm-venv>/bin/python harness/vllm_worker.py REQUEST.json RESPONSE.json

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
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: vllm_worker.py REQUEST.json RESPONSE.json", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    model_dir = Path(request["model_dir"])
    dtype = request.get("dtype", "float32")
    runs = request.get("runs") or [{"requests": request["requests"]}]
    widest = max((len(runs_rows) for runs_rows in (r["requests"] for r in runs)), default=1)
    max_len = int(request["max_model_len"])
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib(model_dir, dtype, max(widest, 1) * max_len)))

    RULES["eos"] = request.get("eos_id")
    if request.get("citation_window") is not None:
        order = int(request["citation_window"])
        RULES.update(
            index=build_index(request.get("train_sequences") or [], order),
            order=order,
            include_context=bool(request.get("citation_include_context")),
            word_starts=frozenset(request["citation_word_starts"]) if request.get("citation_word_starts") is not None else None,
        )

    started = time.perf_counter()
    import vllm
    from vllm import LLM

    llm = LLM(
        model=str(model_dir),
        tokenizer=str(model_dir),
        dtype=dtype,
        max_model_len=max_len,
        max_num_seqs=max(widest, 1),
        seed=0,
        enable_prefix_caching=False,  # a row's KV comes from its own prompt, never from another request's
        generation_config="vllm",  # the folder's generation_config.json must not change our sampling params
        logits_processors=[processor_class()],
        enforce_eager=bool(request.get("enforce_eager", False)),
    )
    load_s = time.perf_counter() - started

    done = [run_batch(llm, run["requests"], request, prefix=f"r{n}-") for n, run in enumerate(runs)]
    response: dict[str, Any] = {
        "outputs": done[0]["outputs"],
        "stopped_at_eos": done[0]["stopped_at_eos"],
        "extras": done[0]["extras"],
        "seconds": {"load": load_s, "generate": sum(d["generate_s"] for d in done)},
        "vllm_version": vllm.__version__,
    }
    if request.get("runs"):
        response["runs"] = done
    tmp = Path(argv[2]).with_suffix(".partial")
    tmp.write_text(json.dumps(response), encoding="utf-8")
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":  # vLLM may spawn helper processes that re-import this file: nothing runs on import
    sys.exit(main(sys.argv))
