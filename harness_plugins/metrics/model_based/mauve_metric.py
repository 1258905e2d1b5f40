"""mauve: MAUVE (Pillutla et al. 2021) between generations and human continuations, on harness-made features."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from harness.api import InputError, Metric, Param

from ._featurizers import feature_memo, featurizer_params, make_featurizer, text_features

log = logging.getLogger("harness")

#: MAUVE is optimistically biased below this many texts per side (mauve-text README, "Best Practices")
RECOMMENDED_N = 1000
#: default ``small_n``: below this many texts per side a prompt bootstrap says nothing useful (auto k-means has
#: fewer than 10 clusters, and a with-replacement resample of a few dozen prompts mostly re-clusters duplicates,
#: so its percentiles can exclude the value itself), so the interval is the spread over MAUVE seeds, marked
SMALL_N = 100
#: default ``spread_seeds``: MAUVE seeds (seed, seed+1, ...) whose range is the small-sample interval
SPREAD_SEEDS = 10
_WARNED_SIZES: set[int] = set()  # sizes already warned about in this process
_WORD = re.compile(r"\S+")
#: faiss prints this to the C-level stderr whenever k-means has < 39 points per centroid (always, at small n)
_FAISS_NOISE = re.compile(rb"^WARNING clustering \d+ points to \d+ centroids: please provide at least \d+ training points$")


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Hide faiss's small-sample k-means warning (written by C code to fd 2, once per k-means run).

    fd 2 is sent to a temporary file while the block runs; afterwards every other line written there is
    passed on to stderr, so nothing but that warning is lost. Falls back to doing nothing where fd 2
    cannot be redirected.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().splitlines(keepends=True) if not _FAISS_NOISE.match(line.rstrip(b"\r\n"))]
            if kept:
                os.write(2, b"".join(kept))


def truncate_words(text: str, words: int) -> str:
    """The text up to the end of its ``words``-th whitespace-separated word (original spacing kept inside)."""
    if words <= 0:
        return ""
    end = None
    for count, match in enumerate(_WORD.finditer(text), start=1):
        end = match.end()
        if count == words:
            break
    return text if end is None else text[:end]


def paired_truncation(output: str, reference: str, max_words: int | None) -> tuple[str, str]:
    """Cut both texts to the same number of whitespace words: min(words(output), words(reference), max_words)."""
    n = min(len(_WORD.findall(output)), len(_WORD.findall(reference)))
    if max_words is not None:
        n = min(n, max_words)
    return truncate_words(output, n), truncate_words(reference, n)


class Mauve(Metric):
    name = "mauve"
    description = (
        "MAUVE (mauve-text) between the generations (p) and the human reference continuations (q), on features the "
        "harness computes (default: offline all-MiniLM-L6-v2); both sides of each pair cut to the same word count."
    )
    level = "corpus"
    higher_is_better = True
    requires = ("output_text", "reference_text")
    modalities = ("text",)
    version = "1"
    #: each resample re-runs PCA + k-means (features are cached per text, so only that): cap the bootstrap
    max_bootstrap = 50
    params = featurizer_params("minilm") + (
        Param("max_words", int, default=None, min=1,
              help="cut both texts of a pair to at most this many whitespace words (None: the shorter text's count)"),
        Param("num_buckets", (int, str), default="auto", min=2,
              help='k-means clusters: "auto" (MAUVE: max(2, round(min(n_p, n_q) / 10))) or an int ≥ 2'),
        Param("scaling", float, default=5.0, min=0.0, exclusive_min=True, help="mauve_scaling_factor c"),
        Param("seed", int, default=25, help="MAUVE seed (PCA random_state seed+1, k-means seed seed+2)"),
        Param("kmeans_num_redo", int, default=5, min=1, help="k-means restarts (best objective kept)"),
        Param("kmeans_max_iter", int, default=500, min=1, help="k-means iterations"),
        Param("kmeans_explained_var", float, default=0.9, min=0.0, max=1.0, exclusive_min=True,
              help="variance kept by the PCA before k-means"),
        Param("threads", int, default=1, min=1,
              help="BLAS/OpenMP threads while MAUVE runs (threadpoolctl); 1 is much faster at MAUVE's sizes"),
        Param("small_n", int, default=SMALL_N, min=2,
              help="below this many texts per side: the interval is the spread over spread_seeds MAUVE seeds and the "
                   "row carries a small-sample warning, instead of a bootstrap over prompts"),
        Param("spread_seeds", int, default=SPREAD_SEEDS, min=2,
              help="MAUVE seeds seed, seed+1, ... whose min-max range is the small-sample interval"),
    )  # fmt: skip
    definition = (
        "p = the records' output_text, q = their reference_text (one q entry per record, so several draws of a prompt "
        "repeat its reference). Each pair is first cut to the same length: n = min(words(output), words(reference), "
        "max_words) where words are maximal runs of non-whitespace characters, and each text is kept up to the end "
        "of its n-th word (inner spacing unchanged). Both sides are featurized by the chosen featurizer (minilm "
        "default: all-MiniLM-L6-v2 mean pooling over the attention mask, L2-normalised, max_length 256 tokens; model: "
        "the evaluated model's last hidden state at the last token; gpt2-large: MAUVE's default featurizer) and the "
        "value is mauve.compute_mauve(p_features, q_features, device_id=-1, num_buckets, mauve_scaling_factor=scaling, "
        "seed, kmeans_num_redo, kmeans_max_iter, kmeans_explained_var, other arguments at mauve-text defaults).mauve "
        "(mauve-text 0.4: L2-normalise, PCA, faiss k-means, histogram divergence-curve area), in [0, 1]. Interval, "
        "with n records: if n >= small_n (default 100), a seeded percentile bootstrap over prompts recomputing MAUVE "
        "on each resample (features reused), at most 50 resamples, widened to contain the value; if n < small_n, "
        "the min-max range of MAUVE over seeds seed, seed+1, ..., seed+spread_seeds-1 (default 10; seed itself gives "
        "the value), method 'seeds', with a small-sample warning on the row: it shows clustering noise, not sampling "
        "error. Biased upward and noisy below ~1000 texts per side (a warning is logged)."
    )

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)

    def _num_buckets(self) -> int | str:
        value = self.option("num_buckets")
        if isinstance(value, str):
            if value != "auto":
                raise InputError(f'mauve: num_buckets must be "auto" or an int ≥ 2, got {value!r}')
            return "auto"
        return int(value)

    def pairs(self, samples: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        max_words = self.option("max_words")
        p, q = [], []
        for record in samples:
            out, ref = paired_truncation(str(record.get("output_text") or ""), str(record.get("reference_text") or ""), max_words)
            p.append(out)
            q.append(ref)
        return p, q

    def features(self, samples: list[dict[str, Any]]) -> tuple[Any, Any]:
        p, q = self.pairs(samples)
        featurizer = make_featurizer(self.config or {}, self.context)
        feats = text_features(featurizer, p + q, feature_memo(featurizer))
        return feats[: len(p)], feats[len(p) :]

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        return self._mauve(samples, int(self.option("seed")))

    def own_interval(self, samples: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Below ``small_n`` texts per side: the min-max of MAUVE over ``spread_seeds`` seeds (the configured seed
        first, so the range contains the value), with a warning for the row; otherwise None (prompt bootstrap)."""
        n, small_n = len(samples), int(self.option("small_n"))
        if n >= small_n:
            return None
        first, count = int(self.option("seed")), int(self.option("spread_seeds"))
        values = [self._mauve(samples, first + k) for k in range(count)]
        return {
            "ci_low": min(values),
            "ci_high": max(values),
            "method": "seeds",
            "warning": (
                f"small sample: {n} texts per side (< {small_n}); MAUVE is biased upward here and the interval is "
                f"its range over {count} MAUVE seeds, not a sampling interval"
            ),
        }

    def _mauve(self, samples: list[dict[str, Any]], seed: int) -> float:
        import mauve

        buckets = self._num_buckets()
        if len(samples) < 2:
            raise ValueError("mauve needs at least 2 records")
        if len(samples) < RECOMMENDED_N and len(samples) not in _WARNED_SIZES:  # once per size and process
            _WARNED_SIZES.add(len(samples))
            log.warning(
                "mauve: %d texts per side; MAUVE is biased upward and noisy below ~%d per side (compare only runs "
                "of equal size)", len(samples), RECOMMENDED_N,
            )
        p_features, q_features = self.features(samples)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(self.option("threads"))), filtered_native_stderr():
            out = mauve.compute_mauve(
                p_features=p_features,
                q_features=q_features,
                num_buckets=buckets,
                kmeans_explained_var=float(self.option("kmeans_explained_var")),
                kmeans_num_redo=int(self.option("kmeans_num_redo")),
                kmeans_max_iter=int(self.option("kmeans_max_iter")),
                mauve_scaling_factor=float(self.option("scaling")),
                device_id=-1,
                verbose=False,
                seed=seed,
            )
        return float(out.mauve)
