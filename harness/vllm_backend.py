"""The optional vLLM generation backend, seen from our venv: no vllm and no torch at import time.

vLLM lives in a virtual environment of its own (``bash scripts/setup_vllm.sh`` builds ``.venv-vllm`` in the
repository root; ``HARNESS_VLLM_PYTHON`` may name another interpreter), because it pins a transformers older
than ours. This module turns one of our decoders into vLLM sampling parameters, writes a request file, runs
``harness/vllm_worker.py`` with that interpreter and reads the continuations back; the per-step statistics
(raw-distribution entropy and top-1 probability) then come from one teacher-forced pass of the same weights in
our process (:func:`vllm_generations`), so a record looks like one from our loop.

What is expressible (:data:`SUPPORTED`, :func:`vllm_problem`): greedy, top-p, top-k, min-p, temperature,
repetition-penalty and citation-blocked (a logits processor inside the worker). Everything else (typical,
no-repeat-ngram, beam, contrastive, entropy-matched-temperature, static-reweight, ``compose:`` lists) is
refused with a message naming the decoder. docs/vllm.md has the set-up, the rules kept and the measured agreement.

The pieces, for the generation phase::

    model_dir = export_for_vllm(handle, cache_root / "vllm-models" / weights_key)   # once per weights
    with VllmSession() as session:                                                   # one engine load per weights
        gens = generate_batch(handle, decoder, contexts, new_tokens, ctx, model_dir, session=session)
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from harness.errors import InputError, RunError

if TYPE_CHECKING:  # pragma: no cover
    from harness.api import DecodeContext, ModelHandle
    from harness.decoding import Generation

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("vllm_worker.py")
#: names another interpreter with vllm installed (a venv's bin/python); default REPO/.venv-vllm/bin/python
PYTHON_ENV = "HARNESS_VLLM_PYTHON"
DEFAULT_VENV = REPO / ".venv-vllm"
SETUP_COMMAND = "bash scripts/setup_vllm.sh"
#: the last lines of the worker's log quoted in an error
LOG_TAIL_LINES = 30
#: rows per teacher-forced pass when the statistics are computed (logits are rows x length x vocab floats)
RESCORE_CHUNK = 8

#: our decoder plugins vLLM can run, with their params' defaults (tests check these against the plugins' schemas)
DEFAULTS: dict[str, dict[str, Any]] = {
    "greedy": {},
    "top-p": {"p": 0.9, "temperature": 0.7, "top_k": 50},
    "top-k": {"k": 50, "temperature": 1.0},
    "min-p": {"p": 0.1, "temperature": 1.0},
    "temperature": {"temperature": 1.0},
    "repetition-penalty": {"penalty": 1.2},
    "citation-blocked": {"window": 5, "word_boundary": False, "include_context": False},
}
SUPPORTED = frozenset(DEFAULTS)

#: why the other bundled decoders are refused (anything else: "not one vLLM can express")
REFUSALS = {
    "typical": "vLLM's sampler has no locally typical truncation",
    "no-repeat-ngram": "vLLM 0.32 has no n-gram ban on a row's own tokens",
    "beam": "vLLM's beam search is a separate API with its own length rules, not this decoder's",
    "contrastive": "contrastive search needs the model's hidden states at every step, which vLLM does not expose",
    "entropy-matched-temperature": "its temperature is calibrated on our model's context logits first",
    "static-reweight": "its bias is estimated from a second, fitted model in our process",
}


# --------------------------------------------------------------------------- where vLLM is


def _candidate_python() -> Path:
    named = os.environ.get(PYTHON_ENV)
    return Path(named).expanduser() if named else DEFAULT_VENV / "bin" / "python"


@functools.lru_cache(maxsize=8)
def _imports_vllm(python: str) -> str | None:
    """vllm's version if ``import vllm`` works in ``python`` (run once per interpreter and process), else None."""
    try:
        done = subprocess.run(
            [python, "-c", "import vllm, sys; sys.stdout.write(vllm.__version__)"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or "unknown") if done.returncode == 0 else None


def vllm_python(check_import: bool = True) -> Path | None:
    """The interpreter with vLLM: ``$HARNESS_VLLM_PYTHON``, else ``REPO/.venv-vllm/bin/python``; None when it is
    missing or (``check_import``) ``import vllm`` fails there. The import check runs once per process."""
    python = _candidate_python()
    if not python.is_file():
        return None
    if check_import and _imports_vllm(str(python)) is None:
        return None
    return python


def vllm_version() -> str | None:
    """vllm's version in :func:`vllm_python` (None: not installed)."""
    python = vllm_python()
    return None if python is None else _imports_vllm(str(python))


def require_vllm_python() -> Path:
    """:func:`vllm_python`, or an InputError saying which interpreter was tried and how to install vLLM."""
    python = vllm_python()
    if python is not None:
        return python
    tried = _candidate_python()
    where = f"{PYTHON_ENV}={tried}" if os.environ.get(PYTHON_ENV) else str(tried)
    state = "does not exist" if not tried.is_file() else "cannot `import vllm`"
    raise InputError(
        f"the vLLM backend needs vLLM in its own virtual environment, and {where} {state}; build it with "
        f"`{SETUP_COMMAND}` (creates .venv-vllm, about 2.3 GB) or point {PYTHON_ENV} at a python that has vllm"
    )


# --------------------------------------------------------------------------- our decoders as vLLM sampling params


def vllm_problem(plugin: str, params: dict[str, Any] | None = None) -> str | None:
    """Why vLLM cannot run decoder ``plugin`` with ``params`` (a message naming it), or None when it can."""
    params = dict(params or {})
    if plugin == "compose" or "compose" in params:
        parts = [p.get("plugin", "?") for p in params.get("compose") or [] if isinstance(p, dict)]
        named = f" ({' + '.join(parts)})" if parts else ""
        return (f'decoder "compose"{named}: the vLLM backend runs single decoders only, not `compose:` lists; '
                "use the default backend for compositions")  # fmt: skip
    if plugin not in SUPPORTED:
        why = REFUSALS.get(plugin, "it is not one of the decoders vLLM can express")
        return (f'decoder "{plugin}" cannot run on the vLLM backend: {why}; supported there: '
                f"{', '.join(sorted(SUPPORTED))} (use the default backend for {plugin})")  # fmt: skip
    unknown = sorted(set(params) - set(DEFAULTS[plugin]))
    if unknown:
        return f'decoder "{plugin}" on the vLLM backend: unknown params {", ".join(unknown)}'
    return None


def sampling_for(plugin: str, params: dict[str, Any] | None, new_tokens: int) -> dict[str, Any]:
    """vLLM ``SamplingParams`` fields (seed and EOS handling left to the worker) for our decoder ``plugin``."""
    problem = vllm_problem(plugin, params)
    if problem:
        raise InputError(problem)
    p = DEFAULTS[plugin] | dict(params or {})
    greedy = {"temperature": 0.0}
    fields: dict[str, Any] = {
        "greedy": greedy,
        "citation-blocked": greedy,
        "repetition-penalty": {"temperature": 0.0, "repetition_penalty": float(p.get("penalty", 1.0))},
        "top-p": {"temperature": float(p.get("temperature", 1.0)), "top_p": float(p.get("p", 1.0)),
                  "top_k": int(p.get("top_k", 0))},  # fmt: skip
        "top-k": {"temperature": float(p.get("temperature", 1.0)), "top_k": int(p.get("k", 0))},
        "min-p": {"temperature": float(p.get("temperature", 1.0)), "min_p": float(p.get("p", 0.0))},
        "temperature": {"temperature": float(p.get("temperature", 1.0))},
    }[plugin]
    return dict(fields, max_tokens=int(new_tokens))


def word_start_ids(starts_word: Callable[[int], bool], vocab_size: int) -> list[int]:
    """The token ids for which ``starts_word`` holds (the citation blocker's ``word_boundary`` rule, as data)."""
    return [token for token in range(vocab_size) if starts_word(token)]


# --------------------------------------------------------------------------- running the worker


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    lines = [line for line in lines if "set_num_threads" not in line]  # vLLM repeats this warning per step
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # our venv's paths must not leak into the vLLM interpreter
    return env


def run_worker(
    request: dict[str, Any], python: Path | None = None, timeout: float | None = None, session: "VllmSession | None" = None
) -> dict[str, Any]:
    """Run ``harness/vllm_worker.py`` on one request (see its docstring) and return its response: in a fresh
    process (the engine loads, answers, exits), or in ``session``'s process (the engine stays loaded)."""
    if session is not None:
        return session.run(request)
    python = python or require_vllm_python()
    with tempfile.TemporaryDirectory(prefix="harness-vllm-") as tmp:
        folder = Path(tmp)
        req, resp, log = folder / "request.json", folder / "response.json", folder / "worker.log"
        req.write_text(json.dumps(request), encoding="utf-8")
        with log.open("wb") as sink:
            try:
                done = subprocess.run([str(python), str(WORKER), str(req), str(resp)], stdout=sink,
                                      stderr=subprocess.STDOUT, cwd=tmp, env=_worker_env(), timeout=timeout)  # fmt: skip
            except subprocess.TimeoutExpired:
                raise RunError(f"the vLLM worker ran past {timeout} s; its log ends with:\n{_log_tail(log)}") from None
        if done.returncode != 0 or not resp.is_file():
            raise RunError(f"the vLLM worker ({python}) failed with exit code {done.returncode}; its log ends with:\n"
                           f"{_log_tail(log)}")  # fmt: skip
        return json.loads(resp.read_text(encoding="utf-8"))


class VllmSession:
    """One vLLM worker process kept across batches (``vllm_worker.py --serve``), so the engine loads once per
    weights instead of once per batch; a request for other weights reloads it. Use it as a context manager,
    or call :meth:`close`; the process also ends when this process does (its stdin closes)."""

    def __init__(self, python: Path | None = None, timeout: float | None = None):
        self.python = python
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.folder: Path | None = None
        self.requests = 0

    def __enter__(self) -> "VllmSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[str]:
        python = self.python or require_vllm_python()
        self.folder = Path(tempfile.mkdtemp(prefix="harness-vllm-session-"))
        self.log = self.folder / "worker.log"
        with self.log.open("wb") as sink:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(python), str(WORKER), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sink,
                cwd=self.folder, env=_worker_env(), text=True, bufsize=1,
            )  # fmt: skip
        return self.proc

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request to the worker and wait for its response."""
        import selectors

        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert self.folder is not None and proc.stdin is not None and proc.stdout is not None
        self.requests += 1
        req, resp = self.folder / f"request-{self.requests}.json", self.folder / f"response-{self.requests}.json"
        req.write_text(json.dumps(request), encoding="utf-8")
        try:
            proc.stdin.write(json.dumps({"request": str(req), "response": str(resp)}) + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died: reported below
        with selectors.DefaultSelector() as waiting:
            waiting.register(proc.stdout, selectors.EVENT_READ)
            if not waiting.select(self.timeout):
                self.close()
                raise RunError(f"the vLLM worker ran past {self.timeout} s on a request")
        line = proc.stdout.readline().strip()
        req.unlink(missing_ok=True)
        if line == "done":
            response = json.loads(resp.read_text(encoding="utf-8"))
            resp.unlink(missing_ok=True)
            return response
        if line == "error":
            error = json.loads(resp.read_text(encoding="utf-8")).get("error", "")
            tail = "\n".join(error.strip().splitlines()[-LOG_TAIL_LINES:])
            raise RunError(f"the vLLM worker failed on a request:\n{tail}")
        proc.wait(timeout=30)
        raise RunError(f"the vLLM worker ({proc.args[0]}) stopped with exit code {proc.returncode}; its log ends "
                       f"with:\n{_log_tail(self.log)}")  # fmt: skip

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def build_request(
    model_dir: Path,
    dtype: str,
    plugin: str,
    params: dict[str, Any] | None,
    contexts: Sequence[Sequence[int]],
    new_tokens: int,
    seeds: Sequence[int],
    stop_at_eos: bool,
    eos_id: int | None,
    train_sequences: Sequence[Sequence[int]] | None,
    word_starts: Sequence[int] | None = None,
    enforce_eager: bool | None = None,
) -> dict[str, Any]:
    """The worker's request for one batch (no vLLM needed to build it; tests inspect it). ``enforce_eager``:
    None lets the worker choose (eager on a CPU: the engine loads in ~6 s instead of ~40 s, for ~15% lower
    throughput, docs/vllm.md; compiled with CUDA graphs elsewhere)."""
    if len(seeds) != len(contexts):
        raise ValueError(f"{len(seeds)} seeds for {len(contexts)} contexts")
    sampling = sampling_for(plugin, params, new_tokens)
    p = DEFAULTS[plugin] | dict(params or {})
    request: dict[str, Any] = {
        "model_dir": str(model_dir),
        "dtype": dtype,
        "max_model_len": max((len(c) for c in contexts), default=1) + int(new_tokens),
        "requests": [{"prompt_token_ids": [int(t) for t in c], "seed": int(s)} for c, s in zip(contexts, seeds)],
        "sampling": sampling,
        "eos_id": eos_id,
        "stop_at_eos": bool(stop_at_eos),
        "citation_window": None,
        "train_sequences": None,
        "enforce_eager": enforce_eager,
    }
    if plugin == "citation-blocked":
        if train_sequences is None:
            raise InputError("citation-blocked needs a recipe that trains: it blocks the recipe's training sequences")
        if p["word_boundary"] and word_starts is None:
            raise ValueError("citation-blocked with word_boundary needs word_starts (see word_start_ids)")
        request.update(
            citation_window=int(p["window"]),
            citation_include_context=bool(p["include_context"]),
            citation_word_starts=[int(t) for t in word_starts] if p["word_boundary"] else None,
            train_sequences=[[int(t) for t in s] for s in train_sequences],
        )
    return request


def generate_with_vllm(
    model_dir: Path,
    dtype: str,
    plugin: str,
    params: dict[str, Any] | None,
    contexts: list[list[int]],
    new_tokens: int,
    seeds: list[int],
    stop_at_eos: bool,
    eos_id: int | None,
    train_sequences: list[list[int]] | None,
    word_starts: Sequence[int] | None = None,
    timeout: float | None = None,
    session: VllmSession | None = None,
    enforce_eager: bool | None = None,
) -> tuple[list[list[int]], dict[str, Any]]:
    """Continue ``contexts`` with vLLM: the token ids per row, and facts about the run.

    ``model_dir`` is a complete transformers folder (:func:`export_for_vllm`); ``dtype`` the weights' dtype
    ("float32", "bfloat16"). Under ``stop_at_eos`` False every row has exactly ``new_tokens`` tokens and none is
    ``eos_id``; under True a row ends at EOS (dropped). The facts: ``seconds`` (load, generate, total wall
    time with the interpreter's start-up), ``vllm_version``, ``stopped_at_eos`` and ``extras`` per row
    (``blocked_steps`` for citation-blocked). ``session``: run in that worker process (the engine stays
    loaded between calls) instead of a fresh one.
    """
    if not contexts:
        return [], {"seconds": {"load": 0.0, "generate": 0.0, "total": 0.0}, "stopped_at_eos": [], "extras": []}
    request = build_request(model_dir, dtype, plugin, params, contexts, new_tokens, seeds, stop_at_eos, eos_id,
                            train_sequences, word_starts, enforce_eager)  # fmt: skip
    started = time.perf_counter()
    response = run_worker(request, timeout=timeout, session=session)
    outputs = [list(map(int, row)) for row in response["outputs"]]
    if len(outputs) != len(contexts):
        raise RunError(f"the vLLM worker returned {len(outputs)} rows for {len(contexts)} contexts")
    for row, ids in enumerate(outputs):
        short = len(ids) != new_tokens if not stop_at_eos else len(ids) > new_tokens
        if short or (not stop_at_eos and eos_id is not None and eos_id in ids):
            raise RunError(f"the vLLM worker broke the EOS policy on row {row}: {len(ids)} tokens for {new_tokens}"
                           f" (stop_at_eos {stop_at_eos})")  # fmt: skip
    facts = {
        "seconds": dict(response.get("seconds", {}), total=time.perf_counter() - started),
        "vllm_version": response.get("vllm_version"),
        "enforce_eager": response.get("enforce_eager"),
        "stopped_at_eos": list(response.get("stopped_at_eos") or [False] * len(outputs)),
        "extras": list(response.get("extras") or [{} for _ in outputs]),
    }
    return outputs, facts


# --------------------------------------------------------------------------- records like our loop's


def vllm_generations(
    handle: "ModelHandle",
    token_lists: Sequence[Sequence[int]],
    contexts: Sequence[Sequence[int]],
    stopped_at_eos: Sequence[bool] | None = None,
    extras: Sequence[dict[str, Any]] | None = None,
    chunk: int = RESCORE_CHUNK,
) -> list["Generation"]:
    """vLLM's continuations as our :class:`Generation` records: per-step raw entropy and top-1 probability from
    a teacher-forced pass of ``handle`` (the same weights) over context + output, ``chunk`` rows at a time
    (``harness.decoding.rescore``: the statistics our loop records, from the raw logits, EOS included)."""
    from harness.decoding import Generation, rescore

    stats: list[tuple[list[float], list[float]]] = []
    for start in range(0, len(token_lists), max(1, chunk)):
        stop = start + max(1, chunk)
        stats.extend(rescore(handle, list(contexts[start:stop]), list(token_lists[start:stop])))
    stopped = list(stopped_at_eos) if stopped_at_eos is not None else [False] * len(token_lists)
    facts = list(extras) if extras is not None else [{} for _ in token_lists]
    return [
        Generation(list(map(int, out)), entropy, top1, stopped_at_eos=bool(end), extras=dict(extra))
        for out, (entropy, top1), end, extra in zip(token_lists, stats, stopped, facts)
    ]


def handle_dtype(handle: "ModelHandle") -> str:
    """The weights' dtype as vLLM names it ("float32", "bfloat16", "float16")."""
    return str(next(handle.module.parameters()).dtype).removeprefix("torch.")


def generate_batch(
    handle: "ModelHandle",
    decoder: Any,
    contexts: list[list[int]],
    new_tokens: int,
    ctx: "DecodeContext",
    model_dir: Path,
    timeout: float | None = None,
    session: VllmSession | None = None,
    enforce_eager: bool | None = None,
) -> list["Generation"]:
    """One generation batch of ``decoder`` (a configured decoder instance: ``name`` and resolved ``config``) on
    vLLM, as our decoders return it. ``model_dir``: :func:`export_for_vllm` of ``handle``'s current weights."""
    plugin, params = decoder.name, dict(decoder.config)
    problem = vllm_problem(plugin, params)
    if problem:
        raise InputError(problem)
    word_starts = None
    if plugin == "citation-blocked" and params.get("word_boundary"):
        word_starts = word_start_ids(decoder.word_rule(handle.codec), vocab_size(handle))
    outputs, facts = generate_with_vllm(
        model_dir, handle_dtype(handle), plugin, params, contexts, new_tokens, list(ctx.seeds), ctx.stop_at_eos,
        handle.codec.eos_token_id, ctx.train_sequences, word_starts, timeout=timeout, session=session,
        enforce_eager=enforce_eager,
    )  # fmt: skip
    return vllm_generations(handle, outputs, contexts, facts["stopped_at_eos"], facts["extras"])


def vocab_size(handle: "ModelHandle") -> int:
    """Rows of the model's output embedding (every id the model can emit)."""
    head = handle.module.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(handle.module.config.vocab_size)


# --------------------------------------------------------------------------- weights vLLM can read

#: written last into an exported folder: its presence means the folder is complete
EXPORT_DONE = ".harness-vllm-export"


def export_for_vllm(handle: "ModelHandle", target: Path) -> Path:
    """A complete transformers folder of ``handle``'s current weights (config, tokenizer, safetensors) at ``target``.

    Done once per target: a folder with the completion marker is reused as it is, so key ``target`` by the
    weights (the fit's stage key, or the base model's identity and dtype). Written into a staging folder and
    renamed into place, so a killed export leaves nothing half-written behind.
    """
    target = Path(target)
    if (target / EXPORT_DONE).is_file():
        return target
    tokenizer = getattr(handle.codec, "tokenizer", None)
    if tokenizer is None or not hasattr(handle.module, "save_pretrained"):
        raise InputError("the vLLM backend needs a transformers causal LM with a Hugging Face tokenizer "
                         f"(got {type(handle.module).__name__} with {type(handle.codec).__name__})")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        handle.module.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / EXPORT_DONE).write_text(json.dumps({"dtype": handle_dtype(handle)}), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier export (no marker)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


class VllmRunner:
    """What the generate phase holds for decoders with ``backend: vllm``: one worker process for the run, and the
    exported transformers folder of the weights being decoded (``root/<model id>/<fit key or base>``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.session: VllmSession | None = None
        self.target: Path | None = None

    def use(self, model_id: str, weights_key: str | None) -> None:
        self.target = self.root / model_id[:20] / (weights_key or "base")

    def generate(self, handle: "ModelHandle", decoder: Any, contexts: list[list[int]], new_tokens: int,
                 ctx: "DecodeContext") -> list["Generation"]:  # fmt: skip
        assert self.target is not None, "use() names the weights first"
        model_dir = export_for_vllm(handle, self.target)
        if self.session is None:
            self.session = VllmSession().__enter__()
        return generate_batch(handle, decoder, contexts, new_tokens, ctx, model_dir, session=self.session)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
