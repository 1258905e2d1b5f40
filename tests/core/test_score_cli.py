"""`harness score`: score a hand-made generations JSONL with a registered metric, and its input errors."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main, read_generations
from harness.errors import InputError
from harness_plugins.metrics.self_bleu import SelfBLEU
from harness_plugins.metrics.ttr import TypeTokenRatio


def call(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


IDS = [
    {"output_ids": [1, 2, 3, 1]},  # 3 types / 4 tokens = 0.75
    {"output_ids": [5, 5, 5, 5]},  # 1 / 4 = 0.25
    {"output_ids": [7, 8, 9]},  # 3 / 3 = 1.0
]
TEXTS = [
    {"text": "the cat sat on the mat today"},
    {"text": "a dog ran in the park at noon"},
    {"text": "the cat ran on the mat at noon"},
    {"text": "birds sing loudly in the morning"},
]


def _score(capsys, *args: str) -> dict:
    assert call("score", *args) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_ttr_matches_the_hand_computed_mean(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    out = _score(capsys, "--metric", "ttr", str(path))
    values = [0.75, 0.25, 1.0]
    mean = sum(values) / 3
    half = 1.96 * statistics.stdev(values) / math.sqrt(3)
    assert out["metric"] == "ttr"
    assert out["value"] == pytest.approx(mean, abs=1e-12)
    assert out["ci_low"] == pytest.approx(mean - half, abs=1e-12)
    assert out["ci_high"] == pytest.approx(mean + half, abs=1e-12)
    assert out["n"] == 3
    assert out["level"] == "sample"
    assert out["higher_is_better"] is True
    assert out["version"] == "1"
    assert out["params"] == {"window": 96, "unit": "token-ids"}
    assert out["definition"] == TypeTokenRatio.definition
    assert out["file"] == str(path)


def test_ttr_window_param(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    out = _score(capsys, "--metric", "ttr", "--param", "window=2", str(path))
    # last two ids: [3, 1] -> 1.0, [5, 5] -> 0.5, [8, 9] -> 1.0
    assert out["value"] == pytest.approx(2.5 / 3, abs=1e-12)
    assert out["params"] == {"window": 2, "unit": "token-ids"}


def test_score_in_a_subprocess_prints_json_only(tmp_path):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "score", "--metric", "ttr", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["value"] == pytest.approx(2 / 3)


def test_self_bleu_with_max_order_param_on_text_lines(tmp_path, capsys):
    from sacrebleu.metrics.bleu import BLEU

    path = jsonl(tmp_path / "gen.jsonl", TEXTS)
    out = _score(capsys, "--metric", "self-bleu", "--param", "max_order=2", "--bootstrap", "200", str(path))
    bleu = BLEU(tokenize="13a", smooth_method="floor", smooth_value=0.1, max_ngram_order=2, effective_order=True)
    texts = [r["text"] for r in TEXTS]
    expected = [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]
    assert out["metric"] == "self-bleu"
    assert out["value"] == pytest.approx(sum(expected) / len(expected), abs=1e-9)
    assert out["n"] == 4
    assert out["level"] == "corpus"
    assert out["higher_is_better"] is False
    assert out["params"] == {"max_order": 2, "tokenize": "13a", "smooth": "floor", "smooth_value": 0.1, "lowercase": False}
    assert out["definition"] == SelfBLEU.definition
    assert out["ci_low"] <= out["value"] <= out["ci_high"]


def test_self_bleu_bootstrap_is_seeded(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", TEXTS)
    first = _score(capsys, "--metric", "self-bleu", "--bootstrap", "100", "--seed", "3", str(path))
    second = _score(capsys, "--metric", "self-bleu", "--bootstrap", "100", "--seed", "3", str(path))
    assert (first["ci_low"], first["ci_high"]) == (second["ci_low"], second["ci_high"])


def test_output_text_wins_over_text_alias(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text(
        json.dumps({"text": "alias", "output_text": "real"}) + "\n\n" + json.dumps({"text": "only alias"}) + "\n",
        encoding="utf-8",
    )
    records = read_generations(path)
    assert [r["output_text"] for r in records] == ["real", "only alias"]
    assert [r["prompt_id"] for r in records] == ["1", "3"]  # line numbers; blank lines skipped


def test_prompt_id_in_the_file_is_kept(tmp_path):
    path = jsonl(tmp_path / "gen.jsonl", [{"text": "a", "prompt_id": "p7"}])
    assert read_generations(path)[0]["prompt_id"] == "p7"


# --------------------------------------------------------------------------- input errors (exit 2)


def test_bad_json_line_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "gen.jsonl"
    path.write_text('{"output_ids": [1, 2]}\n{bad json\n', encoding="utf-8")
    assert call("score", "--metric", "ttr", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:2: not valid JSON (")
    assert "Traceback" not in err


def test_non_object_line(tmp_path, capsys):
    path = tmp_path / "gen.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    assert call("score", "--metric", "ttr", str(path)) == 2
    assert capsys.readouterr().err == f"error: {path}:1: expected a JSON object per line\n"


def test_metric_needing_output_ids_on_text_only_records(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", TEXTS)
    assert call("score", "--metric", "ttr", str(path)) == 2
    assert capsys.readouterr().err == (
        f'error: {path}: record 1 has no "output_ids", which metric "ttr" needs (it reads: output_ids)\n'
    )


def test_metric_needing_text_on_ids_only_records(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    assert call("score", "--metric", "self-bleu", str(path)) == 2
    assert 'has no "output_text", which metric "self-bleu" needs' in capsys.readouterr().err


def test_unknown_metric_with_did_you_mean(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    assert call("score", "--metric", "tttr", str(path)) == 2
    assert capsys.readouterr().err == 'error: unknown metric "tttr" (did you mean "ttr"?)\n'


def test_bad_param_value_type(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    assert call("score", "--metric", "ttr", "--param", "window=abc", str(path)) == 2
    assert capsys.readouterr().err == "error: --param window: expected int, got str 'abc'\n"


def test_float_param_for_int(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    assert call("score", "--metric", "ttr", "--param", "window=2.5", str(path)) == 2
    assert capsys.readouterr().err == "error: --param window: expected int, got float 2.5\n"


def test_out_of_range_param(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", TEXTS)
    assert call("score", "--metric", "self-bleu", "--param", "max_order=9", str(path)) == 2
    assert capsys.readouterr().err == "error: --param max_order: 9 must be at most 8\n"


def test_unknown_param_and_malformed_param(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    assert call("score", "--metric", "ttr", "--param", "windw=3", str(path)) == 2
    assert capsys.readouterr().err == "error: --param windw: unknown parameter 'windw' (did you mean \"window\"?)\n"
    assert call("score", "--metric", "ttr", "--param", "window", str(path)) == 2
    assert capsys.readouterr().err == "error: --param 'window': expected KEY=VALUE\n"


def test_missing_and_empty_files(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert call("score", "--metric", "ttr", str(missing)) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file\n"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    assert call("score", "--metric", "ttr", str(empty)) == 2
    assert capsys.readouterr().err == f"error: {empty}: no generations\n"


def test_read_generations_raises_input_error(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text('{"a": 1}\n"str"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"gen\.jsonl:2: expected a JSON object per line"):
        read_generations(path)


def test_metric_is_required(tmp_path, capsys):
    path = jsonl(tmp_path / "gen.jsonl", IDS)
    assert call("score", str(path)) == 2
    assert "--metric" in capsys.readouterr().err


def test_self_bleu_on_a_single_line_is_an_input_error(tmp_path, capsys):
    path = jsonl(tmp_path / "one.jsonl", TEXTS[:1])
    assert call("score", "--metric", "self-bleu", str(path)) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err
    assert "at least 2" in err


def test_model_based_metric_with_a_model_loader(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--model` gives model-reading metrics (perplexity) a model; a random 258-token model scores near 258."""
    from conftest import TINY_PLUGINS

    path = tmp_path / "gens.jsonl"
    rows = [
        {"prompt_id": str(i), "text": "x", "reference_text": "y", "context_ids": [2 + i, 40, 90, 7],
         "reference_ids": [100 + i, 30, 60, 200, 11]}
        for i in range(5)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        main(["--plugins", str(TINY_PLUGINS), "score", "--metric", "perplexity", "--model", "tiny-llama",
              "--model-param", "seed=1", "--device", "cpu", str(path)])  # fmt: skip
    except SystemExit as exit_:
        assert not exit_.code
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 and 150 < out["value"] < 400
    with pytest.raises(SystemExit) as exit_:
        main(["--plugins", str(TINY_PLUGINS), "score", "--metric", "perplexity", "--model", "tiny-lama", str(path)])
    assert exit_.value.code == 2
    assert 'did you mean "tiny-llama"' in capsys.readouterr().err


def test_seq_rep_n_with_the_word_unit_scores_a_text_only_file(tmp_path, capsys):
    """A JSONL from elsewhere with only text: unit=words needs nothing else; the default unit names its field."""
    path = jsonl(tmp_path / "texts.jsonl", [{"text": "the cat the cat the"}, {"text": "a b c"}, {"text": "x x x"}])
    out = _score(capsys, "--metric", "seq-rep-n", "--param", "unit=words", "--param", "n=2", str(path))
    # bigrams: (the cat)(cat the)(the cat)(cat the) → 1 − 2/4 = 0.5; (a b)(b c) → 0.0; (x x)(x x) → 1 − 1/2 = 0.5
    values = [0.5, 0.0, 0.5]
    mean = sum(values) / 3
    half = 1.96 * statistics.stdev(values) / math.sqrt(3)
    assert out["value"] == pytest.approx(mean, abs=1e-12)
    assert (out["ci_low"], out["ci_high"]) == (pytest.approx(mean - half, abs=1e-12), pytest.approx(mean + half, abs=1e-12))
    assert out["n"] == 3 and out["params"] == {"n": 2, "unit": "words"}
    assert call("score", "--metric", "seq-rep-n", str(path)) == 2  # default unit token-ids reads output_ids
    assert 'has no "output_ids", which metric "seq-rep-n" needs' in capsys.readouterr().err
