"""judge-preference: an LLM judge's stand-in for the paper's human preference (Table 1: "preferred or equal").

The paper's annotators compared each model continuation with the original human continuation of the same
context (better / equal / worse) and reported how often the model's was preferred or judged equally good.
Here a judge model makes the same three-way call, asked twice with the two texts in swapped positions so that
a judge that favours the first (or second) slot does not move the number.
"""

from __future__ import annotations

import logging
from typing import Any

from harness_plugins.models._hf_handle import DTYPES

from harness.api import InputError, Metric, Param, RunError

from ._judge import PROMPT_VERSION, HttpJudge, Judge, LocalJudge, VerdictCache, judge_messages, parse_verdict

log = logging.getLogger("harness")

COUNTS = ("better-or-equal", "preference")
#: outcome for the model's continuation: (verdict when it is shown as A, verdict when it is shown as B)
_OUTCOME = {("A", "first"): "better", ("B", "first"): "worse", ("A", "second"): "worse", ("B", "second"): "better"}


def outcome(verdict: str | None, model_slot: str) -> str:
    """better / equal / worse for the model's continuation, or invalid, from the judge's A/B/TIE verdict."""
    if verdict is None:
        return "invalid"
    if verdict == "TIE":
        return "equal"
    return _OUTCOME[(verdict, model_slot)]


def sample_value(outcomes: tuple[str, str], count: str) -> float:
    """Per-continuation score in percent from its two judgements (invalid counts as worse)."""
    if count == "better-or-equal":
        points = {"better": 1.0, "equal": 1.0, "worse": 0.0, "invalid": 0.0}
    else:
        points = {"better": 1.0, "equal": 0.5, "worse": 0.0, "invalid": 0.0}
    return 100.0 * sum(points[o] for o in outcomes) / len(outcomes)


class JudgePreference(Metric):
    name = "judge-preference"
    description = (
        "Percent of judgements in which a judge model (local Hugging Face chat model, or an OpenAI-compatible "
        "endpoint) rates the continuation better than or equal to the human one; both presentation orders"
    )
    level = "sample"
    higher_is_better = True
    requires = ("context_text", "output_text", "reference_text")
    modalities = ("text",)
    version = "1"
    params = (
        Param("model", str, help="judge: a Hugging Face hub id or local folder; with `url`, the model name the endpoint serves"),
        Param("url", str, default=None,
              help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1); requests go to {url}/chat/completions. "
                   "None: run `model` locally with transformers"),
        Param("api_key_env", str, default=None,
              help="name of the environment variable holding the endpoint's API key (sent as a Bearer token; the key "
                   "itself is never stored); None: no Authorization header"),
        Param("count", str, default="better-or-equal", choices=COUNTS,
              help="better-or-equal: better and equal count 1 (the paper's number); preference: better 1, equal 0.5"),
        Param("decision", str, default="generate", choices=("generate", "loglik"),
              help="local judge: generate a reply and parse it, or pick the most likely of the labels A / B / TIE"),
        Param("max_new_tokens", int, default=8, min=1, help="tokens the judge may write per verdict"),
        Param("batch_size", int, default=4, min=1, help="local judge: prompts per forward pass"),
        Param("device", str, default="auto", choices=("auto", "cpu", "cuda"), help="local judge's device"),
        Param("dtype", str, default="auto", choices=DTYPES, help="local judge's weights (auto: bfloat16 on a GPU, else float32)"),
        Param("revision", str, default=None, help="local judge: hub revision; pin it for reproducibility"),
        Param("timeout", float, default=60.0, min=0, exclusive_min=True, help="endpoint: seconds to wait for one answer"),
        Param("tries", int, default=5, min=1, help="endpoint: attempts per request before the run stops"),
        Param("backoff", float, default=2.0, min=0, help="endpoint: seconds before the first retry, doubled after each"),
        Param("concurrency", int, default=4, min=1, help="endpoint: requests in flight at once"),
    )  # fmt: skip
    definition = (
        "For each record, a judge model is shown the context (context_text) and two continuations, asked which is "
        "the better continuation (fluency, coherence, interest, no repetition) and told to answer with one word: A, "
        "B or TIE (prompt version " + PROMPT_VERSION + ", in harness_plugins/metrics/model_based/_judge.py). It is "
        "asked twice: once with the generated continuation (output_text) as A and the original human continuation "
        "(reference_text) as B, once the other way round. A reply is parsed by its first word (after markdown and "
        "an optional 'Answer:' prefix): A, B, TIE (or EQUAL/SAME/BOTH); anything else is an invalid verdict, counted "
        "as 'worse' and reported in the log (when every reply is invalid, scoring stops with an error). Each verdict becomes better / equal / worse for the generated text. "
        "count=better-or-equal (default; the paper's Table 1 measure): per record 100 × (number of the two "
        "judgements that are better or equal) / 2; count=preference: better 1, equal 0.5, worse 0, × 100 / 2. The "
        "metric is the mean over records (percent) with a mean ± 1.96·stderr interval. Judges: a local Hugging Face "
        "causal LM through its chat template, greedy (decision=generate) or the label with the highest "
        "log-probability (decision=loglik); or an OpenAI-compatible /chat/completions endpoint at temperature 0. "
        "Replies are cached per (judge, prompt) under the feature cache. An LLM judge is a proxy for the paper's "
        "human annotators, not a replication; compare only runs with the same judge."
    )

    def make_judge(self) -> Judge:
        """The judge these params describe (a missing API-key variable is an InputError here, before any call)."""
        url = self.option("url")
        if url:
            if self.option("decision") == "loglik":
                raise InputError(f"{self.name}: decision 'loglik' needs a local judge; an endpoint only gives replies (use 'generate')")
            return HttpJudge(
                url, self.option("model"), api_key_env=self.option("api_key_env"),
                max_tokens=self.option("max_new_tokens"), timeout=self.option("timeout"), tries=self.option("tries"),
                backoff=self.option("backoff"), concurrency=self.option("concurrency"),
            )  # fmt: skip
        return LocalJudge(
            self.option("model"), decision=self.option("decision"), revision=self.option("revision"),
            device=self.option("device"), dtype=self.option("dtype"), max_new_tokens=self.option("max_new_tokens"),
            batch_size=self.option("batch_size"),
        )  # fmt: skip

    def judge_outcomes(self, samples: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """(outcome with the generated text as A, outcome with it as B) per record."""
        judge = self.make_judge()
        prompts = []
        for record in samples:
            context, output, human = (str(record.get(k) or "") for k in ("context_text", "output_text", "reference_text"))
            if not human.strip():
                raise InputError(f"{self.name}: record {record.get('prompt_id', '?')} has an empty reference_text")
            prompts.append(judge_messages(context, output, human))
            prompts.append(judge_messages(context, human, output))
        cache_dir = self.context.cache_dir / "judge-verdicts" if self.context and self.context.cache_dir else None
        cache = VerdictCache(cache_dir, judge.identity() | {"prompt_version": PROMPT_VERSION})
        replies: list[str | None] = [cache.get(p) for p in prompts]
        todo = [i for i, r in enumerate(replies) if r is None]
        if todo:
            for i, reply in zip(todo, judge.replies([prompts[i] for i in todo])):
                replies[i] = reply
                cache.put(prompts[i], reply)
        verdicts = [parse_verdict(r) for r in replies]
        invalid = [r for r, v in zip(replies, verdicts) if v is None]
        if invalid:
            log.warning(
                "%s: %d of %d judge replies were not A, B or TIE and count as 'worse' (first: %r)",
                self.name, len(invalid), len(replies), (invalid[0] or "")[:80],
            )  # fmt: skip
        if len(invalid) == len(replies):
            raise RunError(f"{self.name}: none of the judge's {len(replies)} replies was A, B or TIE "
                           f"(first: {(invalid[0] or '')[:80]!r}); check the judge model or use decision: loglik")  # fmt: skip
        return [(outcome(verdicts[2 * i], "first"), outcome(verdicts[2 * i + 1], "second")) for i in range(len(samples))]

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        count = self.option("count")
        return [sample_value(pair, count) for pair in self.judge_outcomes(samples)]
