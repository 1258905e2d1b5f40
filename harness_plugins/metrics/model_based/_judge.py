"""Pairwise judges for ``judge-preference``: the pinned prompt, the verdict parser, and two judge back ends.

* :class:`HttpJudge`: an OpenAI-compatible chat-completions endpoint, spoken with the standard library only
  (``urllib``): ``POST {url}/chat/completions`` with ``{"model", "messages", "temperature": 0, "max_tokens"}``
  and, when an API-key variable is named, ``Authorization: Bearer <key>``. HTTP 429, 5xx, timeouts, refused
  connections and malformed response bodies are retried with exponential backoff (``Retry-After`` is honoured
  up to 60 s); after ``tries`` attempts a :class:`~harness.errors.RunError` names the last failure. Other 4xx
  answers (bad key, unknown model) are an :class:`~harness.errors.InputError` at once. The key is read from
  the environment when a request is made and is never stored or printed.
* :class:`LocalJudge`: any Hugging Face causal LM (a hub id or a local folder), prompted through its chat
  template (a tokenizer without one gets ``system + "\\n\\n" + user``). ``decision = "generate"``: greedy
  decoding of ``max_new_tokens`` tokens, then the parser; ``decision = "loglik"``: the label among ``A``,
  ``B``, ``TIE`` whose tokens have the highest summed log-probability after the prompt (always valid,
  deterministic: usable with small or untuned judges).

Both return the judge's raw reply; :func:`parse_verdict` turns it into ``"A"``, ``"B"``, ``"TIE"`` or None.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.api import InputError, RunError, log_probs, model_device, pad_batch, padded_forward

log = logging.getLogger("harness")

#: bump when the prompt or the parser changes (part of the verdict cache key and of the metric's version)
PROMPT_VERSION = "1"
LABELS = ("A", "B", "TIE")
SYSTEM_PROMPT = "You are a careful, impartial judge of writing quality. You answer with a single word."
USER_PROMPT = """Below is the beginning of a text and two candidate continuations of it, A and B.
Which continuation is the better continuation of the text? Judge fluency, coherence with the beginning and within itself, \
how interesting it is, and whether it avoids repetition. Ignore that a continuation may stop mid-sentence.

Beginning:
{context}

Continuation A:
{first}

Continuation B:
{second}

Answer with exactly one word: A if continuation A is better, B if continuation B is better, TIE if they are equally good."""

Messages = list[dict[str, str]]

_SYNONYMS = {"A": "A", "B": "B", "TIE": "TIE", "EQUAL": "TIE", "SAME": "TIE", "BOTH": "TIE"}
_PREFIX = re.compile(r"^(?:(?:final\s+)?(?:answer|verdict|output|choice)\s*[:\-]?\s*|continuation\s+)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")


def judge_messages(context: str, first: str, second: str) -> Messages:
    """The chat messages asking to compare continuation ``first`` (A) with ``second`` (B) after ``context``."""
    user = USER_PROMPT.format(context=context.strip(), first=first.strip(), second=second.strip())
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_verdict(reply: str | None) -> str | None:
    """``"A"``, ``"B"`` or ``"TIE"`` when the reply's first word (after markdown, quotes and an optional
    "Answer:" / "Verdict:" / "Continuation" prefix) is A, B, TIE, EQUAL, SAME or BOTH; otherwise None.

    Only the first word counts, so "A is better than B" is A, while a reply that opens with reasoning is invalid.
    """
    if not reply:
        return None
    text = reply.strip().lstrip("*_`#>\"' \t\n")
    for _ in range(2):  # "Final answer: Continuation A"
        text = _PREFIX.sub("", text, count=1).lstrip("*_`\"' \t\n")
    word = _WORD.match(text)
    return _SYNONYMS.get(word.group(0).upper()) if word else None


class VerdictCache:
    """Replies on disk under ``<dir>/<sha256>.json``, keyed by the judge's identity and the messages:
    a scoring run that stops half-way (or a second metric with the same judge) does not pay twice."""

    def __init__(self, directory: Path | None, identity: dict[str, Any]):
        self.directory = directory
        self.identity = json.dumps(identity, sort_keys=True, separators=(",", ":"))

    def _path(self, messages: Messages) -> Path | None:
        if self.directory is None:
            return None
        digest = hashlib.sha256((self.identity + json.dumps(messages, sort_keys=True)).encode("utf-8")).hexdigest()
        return self.directory / f"{digest}.json"

    def get(self, messages: Messages) -> str | None:
        path = self._path(messages)
        if path is None or not path.is_file():
            return None
        try:
            return str(json.loads(path.read_text(encoding="utf-8"))["reply"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is asked again

    def put(self, messages: Messages, reply: str) -> None:
        path = self._path(messages)
        if path is not None:
            from harness.api import atomic_write_json

            atomic_write_json(path, {"reply": reply})


class Judge:
    """Answers a list of prompts (chat messages) with the judge's raw replies, in order."""

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def replies(self, prompts: list[Messages]) -> list[str]:
        raise NotImplementedError


# --------------------------------------------------------------------------- HTTP


class _Retry(Exception):
    """A failure worth another try (rate limit, server error, timeout, garbled body)."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class HttpJudge(Judge):
    """An OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp server, Ollama, …)."""

    def __init__(self, url: str, model: str, api_key_env: str | None = None, max_tokens: int = 8,
                 timeout: float = 60.0, tries: int = 5, backoff: float = 2.0, concurrency: int = 4,
                 sleep: Callable[[float], None] = time.sleep):  # fmt: skip
        if not re.match(r"^https?://[^/\s]+", url or ""):
            raise InputError(f"judge url must start with http:// or https://, got {url!r}")
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.tries = tries
        self.backoff = backoff
        self.concurrency = concurrency
        self.sleep = sleep
        self._key()  # a missing key is bad input: say so before the first request

    def identity(self) -> dict[str, Any]:
        return {"judge": "http", "endpoint": self.endpoint, "model": self.model, "max_tokens": self.max_tokens}

    def _key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise InputError(
                f"judge api_key_env names the environment variable {self.api_key_env!r}, which is not set "
                f"(export {self.api_key_env}=... before running)"
            )
        return key

    def _request(self, messages: Messages) -> Any:
        import urllib.request

        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(self.endpoint, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")

    def _once(self, messages: Messages) -> str:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self._request(messages), timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _excerpt(exc.read() if exc.fp else b"")
            if exc.code == 429 or exc.code >= 500:
                raise _Retry(f"HTTP {exc.code} {detail}", _retry_after(exc.headers.get("Retry-After"))) from None
            hint = {401: "check the API key", 403: "check the API key", 404: "check the url and model name"}.get(exc.code, "")
            raise InputError(
                f"judge endpoint {self.endpoint} answered HTTP {exc.code} {detail}" + (f"; {hint}" if hint else "")
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retry(f"no answer ({reason})") from None
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retry(f"malformed response body {_excerpt(raw)}") from None
        if not isinstance(content, str):
            raise _Retry(f"malformed response body {_excerpt(raw)}")
        return content

    def reply(self, messages: Messages) -> str:
        """One completion, retried on transient failures with waits backoff, 2·backoff, 4·backoff, …"""
        for attempt in range(1, self.tries + 1):
            try:
                return self._once(messages)
            except _Retry as problem:
                if attempt == self.tries:
                    raise RunError(
                        f"judge endpoint {self.endpoint} failed {self.tries} time(s); last: {problem}"
                    ) from None
                wait = problem.wait if problem.wait is not None else self.backoff * 2 ** (attempt - 1)
                log.debug("judge endpoint: %s; retry %d/%d in %.1f s", problem, attempt, self.tries - 1, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def replies(self, prompts: list[Messages]) -> list[str]:
        if self.concurrency == 1 or len(prompts) <= 1:
            return [self.reply(p) for p in prompts]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self.reply, prompts))


def _retry_after(value: str | None) -> float | None:
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff schedule


def _excerpt(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


# --------------------------------------------------------------------------- local Hugging Face model

_LOADED: dict[tuple[Any, ...], Any] = {}
_LOAD_LOCK = threading.Lock()


class LocalJudge(Judge):
    """A Hugging Face causal LM run in-process (loaded once per process and device)."""

    def __init__(self, model: str, decision: str = "generate", revision: str | None = None, device: str = "auto",
                 dtype: str = "auto", max_new_tokens: int = 8, batch_size: int = 4):  # fmt: skip
        self.source = model
        self.decision = decision
        self.revision = revision
        self.device_option = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def identity(self) -> dict[str, Any]:
        out: dict[str, Any] = {"judge": "local", "model": self.source, "revision": self.revision,
                               "decision": self.decision, "dtype": self.dtype}  # fmt: skip
        if self.decision == "generate":
            out["max_new_tokens"] = self.max_new_tokens
        folder = Path(self.source).expanduser()
        if folder.is_dir():  # a local folder's contents decide the replies, not its name
            digest = hashlib.sha256()
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                digest.update(path.name.encode() + str(path.stat().st_size).encode())
                if path.stat().st_size < 5_000_000:
                    digest.update(path.read_bytes())
            out["folder_sha256"] = digest.hexdigest()
        return out

    def _device(self) -> str:
        import torch

        if self.device_option == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device_option.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"judge device {self.device_option!r} requested but CUDA is not available")
        return self.device_option

    def handle(self) -> Any:
        from harness_plugins.models._hf_handle import load_causal_lm

        device = self._device()
        key = (self.source, self.revision, device, self.dtype)
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = load_causal_lm(self.source, device=device, dtype=self.dtype, revision=self.revision,
                                              label=f"judge {self.source}")  # fmt: skip
            return _LOADED[key]

    @staticmethod
    def prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
        """The prompt as token ids, through the chat template when the tokenizer has one."""
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        text = "\n\n".join(m["content"] for m in messages)
        return list(tokenizer(text, add_special_tokens=True)["input_ids"])

    def replies(self, prompts: list[Messages]) -> list[str]:
        from harness.api import inference

        handle = self.handle()
        tokenizer = handle.codec.tokenizer
        ids = [self.prompt_ids(tokenizer, m) for m in prompts]
        out: list[str] = []
        with inference(handle.module):
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start : start + self.batch_size]
                if self.decision == "loglik":
                    out.extend(self._by_loglik(handle, tokenizer, chunk))
                else:
                    out.extend(self._by_generation(handle, tokenizer, chunk))
        return out

    def _by_generation(self, handle: Any, tokenizer: Any, chunk: Sequence[list[int]]) -> list[str]:
        pad = handle.codec.pad_token_id if handle.codec.pad_token_id is not None else 0
        ids, mask, _ = pad_batch(chunk, pad, model_device(handle.module), side="left")  # generate() derives positions
        generated = handle.module.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens, do_sample=False,
            pad_token_id=pad, eos_token_id=handle.codec.eos_token_id,
        )  # fmt: skip
        width = ids.shape[1]
        return [tokenizer.decode(row[width:].tolist(), skip_special_tokens=True) for row in generated]

    def _label_scores(self, handle: Any, tokenizer: Any, chunk: Sequence[list[int]]) -> list[list[float]]:
        """Per prompt, the summed log-probability of each label's tokens after it (one right-padded pass)."""
        import torch

        label_ids = [list(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in LABELS]
        rows = [prompt + label for prompt in chunk for label in label_ids]
        pad = handle.codec.pad_token_id if handle.codec.pad_token_id is not None else 0
        logp = log_probs(padded_forward(handle.module, rows, pad, side="right").logits)
        device = logp.device
        out = []
        for i, prompt in enumerate(chunk):
            scores = []
            for j, label in enumerate(label_ids):
                row = i * len(LABELS) + j
                positions = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(label), device=device)
                targets = torch.tensor(label, device=device)
                scores.append(float(logp[row, positions, targets].sum()))
            out.append(scores)
        return out

    def _by_loglik(self, handle: Any, tokenizer: Any, chunk: Sequence[list[int]]) -> list[str]:
        """The label whose tokens are most likely after the prompt (ties to the first label)."""
        return [
            LABELS[max(range(len(LABELS)), key=lambda k: (scores[k], -k))]
            for scores in self._label_scores(handle, tokenizer, chunk)
        ]
