"""mauve: equal to mauve.compute_mauve on the same features; paired truncation; warning; cheap bootstrap."""

from __future__ import annotations

import logging

import pytest
from harness_plugins.metrics.model_based import Mauve
from harness_plugins.metrics.model_based.mauve_metric import (
    paired_truncation,
    truncate_words,
)
from mm_helpers import use_table

from harness.api import MetricContext
from harness.errors import InputError
from harness.scoring import score_metric


def corpus(n: int = 30, dim: int = 8, shift: float = 0.7, seed: int = 0):
    """n records whose output and reference texts map to two Gaussian clouds of features."""
    import numpy as np

    rng = np.random.default_rng(seed)
    table, records = {}, []
    for i in range(n):
        out, ref = f"gen {i}", f"human {i}"
        table[out] = (rng.normal(size=dim) + shift).tolist()
        table[ref] = rng.normal(size=dim).tolist()
        records.append({"prompt_id": f"p{i}", "output_text": out, "reference_text": ref})
    return table, records


def metric(**config) -> Mauve:
    m = Mauve(config)
    m.context = MetricContext()
    return m


def test_truncate_words_keeps_inner_spacing():
    assert truncate_words("  one two\n three  four ", 3) == "  one two\n three"
    assert truncate_words("one two", 5) == "one two"
    assert truncate_words("one two", 0) == ""
    assert paired_truncation(" a b c d", "x y", None) == (" a b", "x y")
    assert paired_truncation(" a b c d", "x y z w v", 3) == (" a b c", "x y z")
    assert paired_truncation("", "x y", None) == ("", "")


@pytest.mark.parametrize("config", [{}, {"num_buckets": 4, "scaling": 2.0, "seed": 7, "kmeans_num_redo": 2,
                                         "kmeans_max_iter": 50, "kmeans_explained_var": 0.8}])  # fmt: skip
def test_equals_compute_mauve_on_the_same_features(monkeypatch, config):
    import mauve
    import numpy as np

    table, records = corpus()
    use_table(monkeypatch, table)
    got = metric(**config).score_corpus(records)
    p = np.asarray([table[r["output_text"]] for r in records], dtype=np.float32)
    q = np.asarray([table[r["reference_text"]] for r in records], dtype=np.float32)
    want = mauve.compute_mauve(
        p_features=p, q_features=q, device_id=-1, verbose=False,
        num_buckets=config.get("num_buckets", "auto"), mauve_scaling_factor=config.get("scaling", 5.0),
        seed=config.get("seed", 25), kmeans_num_redo=config.get("kmeans_num_redo", 5),
        kmeans_max_iter=config.get("kmeans_max_iter", 500),
        kmeans_explained_var=config.get("kmeans_explained_var", 0.9),
    ).mauve  # fmt: skip
    assert got == want
    assert 0.0 < got < 1.0


def test_same_distribution_scores_high_and_shifted_low(monkeypatch):
    table, records = corpus(n=60, shift=0.0, seed=1)
    use_table(monkeypatch, table)
    same = metric().score_corpus(records)
    table, records = corpus(n=60, shift=3.0, seed=1)
    use_table(monkeypatch, table)
    far = metric().score_corpus(records)
    assert same > 0.8 and far < 0.2


def test_features_see_the_truncated_pairs(monkeypatch):
    table = {"a b": [1.0, 0.0], "x y": [0.0, 1.0], "c d": [1.0, 1.0], "z w": [1.0, -1.0]}
    cls = use_table(monkeypatch, table)
    records = [
        {"prompt_id": "1", "output_text": "a b c", "reference_text": "x y"},
        {"prompt_id": "2", "output_text": "c d", "reference_text": "z w q r"},
    ]
    metric().score_corpus(records)
    assert cls.calls == [["a b", "c d", "x y", "z w"]]


def test_small_n_warning_once(monkeypatch, caplog):
    table, records = corpus(n=20)
    use_table(monkeypatch, table)
    m = metric()
    with caplog.at_level(logging.WARNING, logger="harness"):
        m.score_corpus(records)
        m.score_corpus(records)
    warnings = [r for r in caplog.records if "mauve" in r.getMessage() and "1000" in r.getMessage()]
    assert len(warnings) == 1


def test_bootstrap_reuses_features_and_is_capped(monkeypatch):
    table, records = corpus(n=20)
    cls = use_table(monkeypatch, table)
    m = metric(small_n=20)  # at 20 texts, small_n=20 keeps the prompt bootstrap (the default 100 would not)
    assert Mauve.max_bootstrap == 50
    interval = score_metric(m, records, bootstrap=8, seed=0)
    assert interval.method == "bootstrap"
    assert len(cls.calls) == 1  # features computed once for the full set; resamples only re-cluster
    assert 0.0 <= interval.ci_low <= interval.ci_high <= 1.0
    assert interval.n == 20


def test_bad_num_buckets_string():
    with pytest.raises(InputError, match="num_buckets"):
        metric(num_buckets="many").score_corpus([{"output_text": "a", "reference_text": "b"}] * 2)


def test_minilm_features_end_to_end_equal_compute_mauve():
    import mauve
    from harness_plugins.metrics.model_based import _featurizers as fz

    words = ["river", "stone", "light", "garden", "window", "market", "winter", "silver", "forest", "letter", "music", "paper", "bridge"]
    records = [
        {"prompt_id": str(i), "output_text": " ".join(words[i % 13 :] + words[: i % 5]),
         "reference_text": " ".join(reversed(words[: 6 + i % 7]))}
        for i in range(24)
    ]  # fmt: skip
    m = metric(num_buckets=3, kmeans_num_redo=1)
    got = m.score_corpus(records)
    p, q = m.pairs(records)
    f = fz.MiniLMFeaturizer(None, 32, "cpu", MetricContext())
    want = mauve.compute_mauve(p_features=f.embed(p), q_features=f.embed(q), num_buckets=3, kmeans_num_redo=1,
                               device_id=-1, verbose=False, seed=25).mauve  # fmt: skip
    assert got == want


def test_faiss_small_sample_warning_is_filtered_but_other_stderr_kept(capfd):
    import os

    from harness_plugins.metrics.model_based.mauve_metric import filtered_native_stderr

    with filtered_native_stderr():
        os.write(2, b"WARNING clustering 24 points to 2 centroids: please provide at least 78 training points\n")
        os.write(2, b"something else\n")
    err = capfd.readouterr().err
    assert "WARNING clustering" not in err and "something else" in err


def test_scoring_prints_no_faiss_warnings(monkeypatch, capfd):
    table, records = corpus(n=12)
    use_table(monkeypatch, table)
    metric().score_corpus(records)
    assert "WARNING clustering" not in capfd.readouterr().err
