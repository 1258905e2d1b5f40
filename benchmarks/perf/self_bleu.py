"""Self-BLEU speed: the harness's exact O(N·L) algorithm vs the direct sacrebleu leave-one-out loop.

Corpus: ``--n`` (1000) synthetic generations of ``--length`` (96) words each, drawn from a seeded Zipf-like
vocabulary (P(rank r) ∝ 1/r^``--zipf``, ``--vocab`` words), one prompt per generation, so every text is scored
against the other N−1.

1. ours: ``self-bleu`` (default settings: 13a, BLEU-4, floor 0.1, effective order) on all N texts, a fresh
   metric instance per repeat (no warm cache), best of ``--repeats``;
2. direct: ``sacrebleu.BLEU(...).sentence_score(h, others)`` for ``--subsample`` (20) seeded hypotheses, each
   against all N−1 others, timed once and extrapolated linearly to N hypotheses (every hypothesis costs the
   same: N−1 references of the same length distribution). The subsample's scores are checked to equal ours
   (≤ 1e-9), so the ratio compares two computations of the same numbers.

Reproduce (the numbers in the closing note of the metrics issue):

    .venv/bin/python benchmarks/perf/self_bleu.py --out results/perf/self_bleu.json

Prints a small table and writes every number (plus machine and versions) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="number of generations")
    p.add_argument("--length", type=int, default=96, help="words per generation")
    p.add_argument("--vocab", type=int, default=5000, help="vocabulary size")
    p.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent s: P(rank r) ∝ 1/r^s")
    p.add_argument("--subsample", type=int, default=20, help="hypotheses scored by the direct sacrebleu loop")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of ours (best kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    return p.parse_args(argv)


def synthetic_texts(n: int, length: int, vocab: int, zipf: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{r}" for r in range(1, vocab + 1)]
    cum = list(itertools.accumulate(1.0 / r**zipf for r in range(1, vocab + 1)))
    return [" ".join(rng.choices(words, cum_weights=cum, k=length)) for _ in range(n)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import sacrebleu
    from sacrebleu.metrics.bleu import BLEU

    from harness_plugins.metrics.self_bleu import SelfBLEU

    texts = synthetic_texts(args.n, args.length, args.vocab, args.zipf, args.seed)
    records = [{"prompt_id": f"p{i}", "output_text": t} for i, t in enumerate(texts)]

    ours_times = []
    ours: list[float] = []
    for _ in range(max(1, args.repeats)):
        metric = SelfBLEU()
        started = time.perf_counter()
        ours = metric.score_per_text(records)
        ours_times.append(time.perf_counter() - started)
    ours_s = min(ours_times)

    bleu = BLEU(tokenize="13a", smooth_method="floor", smooth_value=0.1, max_ngram_order=4, effective_order=True)
    picked = sorted(random.Random(args.seed + 1).sample(range(args.n), min(args.subsample, args.n)))
    direct: list[float] = []
    started = time.perf_counter()
    for i in picked:
        direct.append(bleu.sentence_score(texts[i], texts[:i] + texts[i + 1 :]).score)
    direct_sub_s = time.perf_counter() - started
    direct_full_s = direct_sub_s * args.n / len(picked)
    max_diff = max(abs(direct[k] - ours[i]) for k, i in enumerate(picked))
    if max_diff > 1e-9:
        raise SystemExit(f"self-bleu disagrees with sacrebleu on the subsample: max |diff| = {max_diff}")

    return {
        "benchmark": "self-bleu",
        "corpus": {"n": args.n, "length": args.length, "vocab": args.vocab, "zipf": args.zipf, "seed": args.seed},
        "settings": {"tokenize": "13a", "max_order": 4, "smooth": "floor", "smooth_value": 0.1,
                     "effective_order": True},  # fmt: skip
        "self_bleu": sum(ours) / len(ours),
        "ours_s": ours_s,
        "ours_runs_s": ours_times,
        "direct_subsample": len(picked),
        "direct_subsample_s": direct_sub_s,
        "direct_per_hypothesis_s": direct_sub_s / len(picked),
        "direct_extrapolated_s": direct_full_s,
        "speedup": direct_full_s / ours_s,
        "max_abs_diff_on_subsample": max_diff,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},  # fmt: skip
        "versions": {"sacrebleu": sacrebleu.__version__},
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    print(f"Self-BLEU on {args.n} generations × {args.length} words (Self-BLEU = {result['self_bleu']:.4f})")
    print(f"  ours (exact, all {args.n} texts)        {result['ours_s']:10.3f} s")
    print(f"  direct sacrebleu, {result['direct_subsample']} hypotheses       {result['direct_subsample_s']:10.3f} s"
          f"  ({result['direct_per_hypothesis_s']:.3f} s each)")  # fmt: skip
    print(f"  direct sacrebleu, extrapolated to {args.n} {result['direct_extrapolated_s']:10.1f} s")
    print(f"  speedup                                 {result['speedup']:10.0f} ×"
          f"   (max |diff| on the subsample {result['max_abs_diff_on_subsample']:.1e})")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
