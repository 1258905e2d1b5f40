"""judge-preference: the verdict parser and scoring rule, an OpenAI-compatible stub server on loopback
(protocol, retries, bad bodies, bad verdicts, keys, cache), and a tiny local Hugging Face judge (mechanics)."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
from harness_plugins.metrics.model_based._judge import (
    LABELS,
    HttpJudge,
    LocalJudge,
    judge_messages,
    parse_verdict,
)
from harness_plugins.metrics.model_based.judge_preference import JudgePreference, outcome, sample_value

from harness.api import MetricContext
from harness.cli import main
from harness.errors import InputError, RunError
from harness.testing import save_tiny_hf_model
from harness.params import resolve_params

GOOD = "The lamps were lit one by one along the harbour, and the ships came home."
BAD = "the the the the the the the the"
CONTEXT = "Evening fell over the town."


def make(context: MetricContext | None = None, **given: Any) -> JudgePreference:
    config, problems = resolve_params(JudgePreference.params, given)
    assert not problems.items, problems.items
    metric = JudgePreference(config)
    metric.context = context or MetricContext()
    return metric


def record(i: int, output: str, reference: str = GOOD) -> dict[str, Any]:
    return {"prompt_id": f"p{i}", "context_text": CONTEXT, "output_text": output, "reference_text": reference}


# --------------------------------------------------------------------------- parsing and the scoring rule


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A", "A"), (" b\n", "B"), ("TIE", "TIE"), ("tie.", "TIE"), ("**A**", "A"), ("`B`", "B"), ('"A"', "A"),
        ("Answer: B", "B"), ("Final answer - A", "A"), ("Verdict: TIE", "TIE"), ("Continuation A", "A"),
        ("Answer: Continuation B is better", "B"), ("Equal", "TIE"), ("Both are equally good", "TIE"),
        ("A is better than B", "A"), ("B.", "B"),
        ("", None), (None, None), ("Neither", None), ("I think A", None), ("Axe", None), ("42", None),
        ("The first one", None),
    ],
)  # fmt: skip
def test_parse_verdict(reply, verdict) -> None:
    assert parse_verdict(reply) == verdict


def test_outcomes_and_per_sample_values() -> None:
    assert outcome("A", "first") == "better" and outcome("B", "first") == "worse"
    assert outcome("A", "second") == "worse" and outcome("B", "second") == "better"
    assert outcome("TIE", "first") == outcome("TIE", "second") == "equal" and outcome(None, "first") == "invalid"
    assert sample_value(("better", "equal"), "better-or-equal") == 100.0
    assert sample_value(("better", "worse"), "better-or-equal") == 50.0
    assert sample_value(("equal", "invalid"), "better-or-equal") == 50.0
    assert sample_value(("better", "equal"), "preference") == 75.0
    assert sample_value(("equal", "equal"), "preference") == 50.0
    assert sample_value(("worse", "invalid"), "preference") == 0.0


def test_prompt_puts_each_text_in_its_slot() -> None:
    system, user = judge_messages(CONTEXT, "first text", "second text")
    assert system["role"] == "system" and user["role"] == "user"
    body = user["content"]
    assert body.index(CONTEXT) < body.index("Continuation A:\nfirst text") < body.index("Continuation B:\nsecond text")
    assert "A, B" not in system["content"] and "TIE" in body


# --------------------------------------------------------------------------- a stub endpoint on loopback


class Stub:
    """An OpenAI-compatible endpoint in a thread: plays any scripted failures first, then answers as ``reply``
    (by default :meth:`judge`) decides from the two continuations in the prompt."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Callable[[BaseHTTPRequestHandler], bool]] = []  # each returns True if it answered
        self.reply: Callable[[str, str], str] = self.judge
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if stub.script and stub.script.pop(0)(self):
                    return
                user = json.loads(body)["messages"][-1]["content"]
                first = user.split("Continuation A:\n", 1)[1].split("\n\nContinuation B:", 1)[0]
                second = user.split("Continuation B:\n", 1)[1].split("\n\nAnswer with", 1)[0]
                self.send(200, {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": stub.reply(first, second)}}]})

            def send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def judge(first: str, second: str) -> str:
        """Repetition loses; otherwise the longer text wins; the same text ties."""
        a, b = (len(t) - 100 * t.count("the the") for t in (first, second))
        return "TIE" if a == b else ("A" if a > b else "B")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(code: int, body: bytes = b'{"error": "busy"}', headers: dict[str, str] | None = None):
    def act(handler) -> bool:
        handler.send(code, body, headers)
        return True

    return act


def stall(seconds: float):
    def act(handler) -> bool:
        time.sleep(seconds)
        handler.send(200, b"{}")  # too late: the client has given up
        return True

    return act


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.close()


def http_metric(stub: Stub, context: MetricContext | None = None, **given: Any) -> JudgePreference:
    params = {"model": "judge-7b", "url": stub.url, "backoff": 0.01, "tries": 3, "timeout": 2.0, "concurrency": 2}
    return make(context, **(params | given))


def test_protocol_and_scores(stub, monkeypatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-test-123")
    metric = http_metric(stub, api_key_env="JUDGE_KEY")
    records = [record(0, GOOD + " More."), record(1, BAD), record(2, GOOD)]
    assert metric.score_samples(records) == [100.0, 0.0, 100.0]  # better twice; worse twice; equal twice
    assert len(stub.requests) == 6
    for request in stub.requests:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == "Bearer sk-test-123"
        assert request["headers"]["Content-Type"] == "application/json"
        body = request["body"]
        assert body["model"] == "judge-7b" and body["temperature"] == 0 and body["max_tokens"] == 8
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    # each record is asked in both orders
    users = sorted(r["body"]["messages"][1]["content"] for r in stub.requests)
    assert sum(f"Continuation A:\n{BAD}" in u for u in users) == 1 and sum(f"Continuation B:\n{BAD}" in u for u in users) == 1
    # the key lives only in the environment
    assert "sk-test-123" not in json.dumps(metric.config) + json.dumps(metric.make_judge().identity())
    assert make(count="preference", model="m", url=stub.url).score_samples(records) == [100.0, 0.0, 50.0]


def test_position_bias_cancels(stub) -> None:
    stub.reply = lambda first, second: "A"  # a judge that always picks the first slot
    assert http_metric(stub).score_samples([record(0, BAD), record(1, GOOD + "!")]) == [50.0, 50.0]


def test_no_key_variable_means_no_authorization_header(stub) -> None:
    http_metric(stub).score_samples([record(0, BAD)])
    assert all("Authorization" not in r["headers"] for r in stub.requests)


def test_missing_key_variable_is_input_error_before_any_request(stub, monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    with pytest.raises(InputError, match="NO_SUCH_JUDGE_KEY.*not set"):
        http_metric(stub, api_key_env="NO_SUCH_JUDGE_KEY").score_samples([record(0, BAD)])
    assert stub.requests == []


def test_retries_after_500_429_bad_json_and_timeout(stub) -> None:
    stub.script = [
        status(500),
        status(429, headers={"Retry-After": "0"}),
        status(200, b"<html>proxy error</html>"),
        status(200, b'{"choices": []}'),
        stall(0.6),
    ]
    metric = http_metric(stub, tries=6, timeout=0.3, concurrency=1)
    assert metric.score_samples([record(0, BAD)]) == [0.0]
    assert len(stub.requests) == 7  # five failures on the first prompt, then one answer for each order


def test_backoff_schedule_and_retry_after() -> None:
    server = Stub()
    try:
        server.script = [status(503), status(502), status(429, headers={"Retry-After": "0.05"})]
        waits: list[float] = []
        judge = HttpJudge(server.url, "m", tries=4, backoff=0.5, sleep=waits.append)
        assert judge.replies([judge_messages(CONTEXT, BAD, GOOD)]) == ["B"]
        assert waits == [0.5, 1.0, 0.05]
    finally:
        server.close()


def test_gives_up_after_tries_with_the_last_failure(stub) -> None:
    stub.script = [status(503, b"overloaded")] * 3
    with pytest.raises(RunError, match=r"failed 3 time\(s\); last: HTTP 503 'overloaded'"):
        http_metric(stub, concurrency=1).score_samples([record(0, BAD)])
    assert len(stub.requests) == 3


def test_unreachable_endpoint_is_a_run_error() -> None:
    server = Stub()
    url = server.url
    server.close()
    with pytest.raises(RunError, match="failed 2 time.*no answer"):
        make(model="m", url=url, tries=2, backoff=0.0, timeout=1.0).score_samples([record(0, BAD)])


@pytest.mark.parametrize(("code", "hint"), [(401, "check the API key"), (404, "check the url and model name"), (400, "")])
def test_client_errors_are_input_errors_without_retry(stub, code, hint) -> None:
    stub.script = [status(code, b'{"error": "nope"}')]
    with pytest.raises(InputError, match=f"HTTP {code} .*nope.*{hint}"):
        http_metric(stub, concurrency=1).score_samples([record(0, BAD)])
    assert len(stub.requests) == 1


def test_unparseable_verdicts_count_as_worse_and_are_reported(stub, caplog) -> None:
    replies = iter(["I cannot decide", "B", "Well, A", "TIE"])
    stub.reply = lambda first, second: next(replies)
    with caplog.at_level(logging.WARNING, logger="harness"):
        values = http_metric(stub, concurrency=1).score_samples([record(0, BAD), record(1, GOOD + "!")])
    # record 0: invalid + (B with the model second = better); record 1: invalid + equal
    assert values == [50.0, 50.0]
    assert "2 of 4 judge replies were not A, B or TIE" in caplog.text and "I cannot decide" in caplog.text


def test_all_unparseable_is_a_run_error(stub) -> None:
    stub.reply = lambda first, second: "Let me think step by step."
    with pytest.raises(RunError, match="none of the judge's 2 replies"):
        http_metric(stub).score_samples([record(0, BAD)])


def test_replies_are_cached_under_the_feature_cache(stub, tmp_path) -> None:
    context = MetricContext(cache_dir=tmp_path / "features")
    records = [record(0, BAD), record(1, GOOD + "!")]
    first = http_metric(stub, context).score_samples(records)
    assert len(stub.requests) == 4 and len(list((tmp_path / "features" / "judge-verdicts").glob("*.json"))) == 4
    assert http_metric(stub, context).score_samples(records) == first
    assert len(stub.requests) == 4  # nothing asked twice
    http_metric(stub, context, model="another-judge").score_samples(records)
    assert len(stub.requests) == 8  # another judge is another cache entry


def test_bad_settings_are_input_errors() -> None:
    with pytest.raises(InputError, match="must start with http"):
        make(model="m", url="localhost:8000").make_judge()
    with pytest.raises(InputError, match="loglik.*needs a local judge"):
        make(model="m", url="http://127.0.0.1:9", decision="loglik").make_judge()
    with pytest.raises(InputError, match="empty reference_text"):
        make(model="m", url="http://127.0.0.1:9").score_samples([record(0, BAD, reference="")])


def test_harness_score_cli_with_the_stub(stub, tmp_path, capsys) -> None:
    gens = tmp_path / "gens.jsonl"
    rows = [record(0, BAD), record(1, GOOD + "!"), record(2, GOOD)]
    gens.write_text("".join(json.dumps(r | {"text": r["output_text"]}) + "\n" for r in rows), encoding="utf-8")
    try:
        main(["score", "--metric", "judge-preference", "--param", "model=m", "--param", f"url={stub.url}",
              "--param", "backoff=0.01", str(gens)])  # fmt: skip
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert "judge-preference" in out and "66.6" in out


# --------------------------------------------------------------------------- a tiny local Hugging Face judge


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_judge_dir(tmp_path_factory) -> Path:
    """A random-init 2-layer Llama with a byte-level BPE tokenizer and a chat template, saved like a hub model."""
    texts = [GOOD, BAD, CONTEXT, judge_messages(CONTEXT, GOOD, BAD)[1]["content"]] * 3
    return save_tiny_hf_model(tmp_path_factory.mktemp("tiny-judge"), texts, vocab_size=400, chat_template=CHAT_TEMPLATE)


def local_records() -> list[dict[str, Any]]:
    return [record(0, BAD), record(1, GOOD + " Then night."), record(2, "Ships, lamps and the sea.")]


def test_local_loglik_judge_matches_a_direct_computation(tiny_judge_dir) -> None:
    import torch

    judge = LocalJudge(str(tiny_judge_dir), decision="loglik", device="cpu", batch_size=4)
    prompts = [judge_messages(CONTEXT, r["output_text"], GOOD) for r in local_records()]
    prompts += [judge_messages(CONTEXT, GOOD, r["output_text"]) for r in local_records()]
    replies = judge.replies(prompts)
    assert set(replies) <= set(LABELS)
    handle = judge.handle()
    tokenizer = handle.codec.tokenizer
    for messages, reply in zip(prompts, replies):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert text.startswith("<|system|>\n") and text.endswith("<|assistant|>\n")
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        scores = []
        for label in LABELS:
            ids = prompt + tokenizer(label, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(handle.module(torch.tensor([ids])).logits[0].float(), dim=-1)
            scores.append(sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt), len(ids))))
        assert reply == LABELS[max(range(3), key=lambda k: scores[k])], (scores, reply)


def test_local_judge_metric_is_deterministic_and_bounded(tiny_judge_dir, tmp_path) -> None:
    params = {"model": str(tiny_judge_dir), "decision": "loglik", "device": "cpu", "batch_size": 2}
    values = make(**params).score_samples(local_records())
    # this random judge says B to every prompt: better once, worse once per record, the position bias cancels
    assert values == [50.0, 50.0, 50.0]
    assert make(**(params | {"batch_size": 5})).score_samples(local_records()) == values  # batching does not change verdicts
    context = MetricContext(cache_dir=tmp_path)
    assert make(context, **params).score_samples(local_records()) == values
    assert len(list((tmp_path / "judge-verdicts").glob("*.json"))) == 6


def test_local_generate_judge_decodes_greedily(tiny_judge_dir) -> None:
    import torch

    judge = LocalJudge(str(tiny_judge_dir), decision="generate", device="cpu", max_new_tokens=4, batch_size=3)
    prompts = [judge_messages(CONTEXT, r["output_text"], GOOD) for r in local_records()]
    replies = judge.replies(prompts)
    handle = judge.handle()
    tokenizer = handle.codec.tokenizer
    for messages, reply in zip(prompts, replies):  # one prompt at a time, no padding: the same text
        ids = torch.tensor([LocalJudge.prompt_ids(tokenizer, messages)])
        out = handle.module.generate(input_ids=ids, max_new_tokens=4, do_sample=False, pad_token_id=0, eos_token_id=2)
        assert reply == tokenizer.decode(out[0, ids.shape[1] :].tolist(), skip_special_tokens=True)
    # this untrained judge writes bytes, not A, B or TIE: the metric says so instead of reporting 0 %
    assert not any(parse_verdict(r) for r in replies)
    with pytest.raises(RunError, match="none of the judge's 6 replies.*decision: loglik"):
        make(model=str(tiny_judge_dir), device="cpu", max_new_tokens=4).score_samples(local_records())


def test_missing_local_judge_is_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="judge .*could not be loaded"):
        make(model=str(tmp_path / "nowhere"), device="cpu").score_samples([record(0, BAD)])
