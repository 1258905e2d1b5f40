"""Helpers for the report tests: copies of the committed results, planted records, a synthetic 10,000-record run."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "results" / "quickstart"
QUICKSTART_IMAGE = ROOT / "results" / "quickstart-image"
#: the phrase planted twice in a continuation: its 4-word n-gram repeats, no 5-word n-gram does
REPEAT = "the quick brown fox"


def copy_results(source: Path, target: Path) -> Path:
    """A writable copy of a committed results folder (without any report a user made in it)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("report.html"))
    return target


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def train_gram(results: Path, recipe: str, n: int = 8, sample: int = 0, start: int = 10) -> list[int]:
    """n consecutive token ids of one training sequence of ``recipes/<recipe>``."""
    first = read_records(results / "recipes" / recipe / "train_samples.jsonl")[sample]
    return list(first["token_ids"][start : start + n])


def plant_text_record(results: Path, cell: str, copy_at: int = 50) -> dict[str, Any]:
    """Rewrite the first record of ``cell``: a text with REPEAT twice, ids with a training 8-gram at ``copy_at``.

    The other ids are above every id the small training set uses, so the planted span is the only copy."""
    path = results / "cells" / cell / "generations.jsonl"
    records = read_records(path)
    rec = records[0]
    gram = train_gram(results, cell.rsplit("__", 1)[0])
    ids = [49000 + (i % 100) for i in range(len(rec["output_ids"]))]
    ids[copy_at : copy_at + len(gram)] = gram
    rec["output_ids"] = ids
    rec["output_text"] = f" Once {REPEAT} jumped; later {REPEAT} slept, and <script>alert('x')</script> </b> ended."
    write_records(path, records)
    return rec


class WordCodec:
    """A codec whose token i is the word ``" w<i>"``: what a text model's tokenizer looks like to the report."""

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(f" w{int(i)}" for i in ids)


def synthetic_results(root: Path, contexts: int = 1250, datasets: Sequence[str] = ("wiki", "news"),
                      cells: Sequence[str] = ("m__base__greedy", "m__base__top-p", "m__fit__greedy", "m__fit__top-p"),
                      new_tokens: int = 224, train: int = 2000, train_tokens: int = 256, seed: int = 0) -> Path:  # fmt: skip
    """A results folder of ``len(cells) × len(datasets) × contexts`` continuations (default 10,000) shaped like
    a real run: 224-token texts with per-step entropy, a recipe trained on 2000 × 256 tokens (the paper's size)."""
    rng = random.Random(seed)
    vocab = 5000
    root.mkdir(parents=True, exist_ok=True)
    metrics = {"ttr": {"higher_is_better": True, "definition": "type-token ratio"}}
    manifest = {"benchmark": "synthetic", "config": {"description": "10,000 synthetic continuations",
                "models": {"m": {"loader": "none-such"}}}, "metrics": metrics,
                "stages": {"computed": {"generate": len(cells) * len(datasets)}, "reused": {}},
                "timings_seconds": {"total": 1.0}}  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    lines = ["model,recipe,decoder,dataset,metric,value,ci_low,ci_high,n,interval,warning"]
    for k, cell in enumerate(cells):
        model, recipe, decoder = cell.split("__")
        for dataset in datasets:
            value = 0.3 + 0.1 * k
            lines.append(f"{model},{recipe},{decoder},{dataset},ttr,{value},{value - 0.05},{value + 0.05},{contexts},normal,")
    (root / "scores.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_rows = [{"doc_id": f"d{i}", "start": 0, "token_ids": [rng.randrange(vocab) for _ in range(train_tokens)]}
                  for i in range(train)]  # fmt: skip
    write_records(root / "recipes" / "m__fit" / "train_samples.jsonl", train_rows)
    for cell in cells:
        records = []
        for dataset in datasets:
            for c in range(contexts):
                ids = [rng.randrange(vocab) for _ in range(new_tokens)]
                if c % 10 == 0:  # a copied stretch now and then
                    source = train_rows[c % train]["token_ids"]
                    ids[40:60] = source[100:120]
                ref = [rng.randrange(vocab) for _ in range(new_tokens)]
                records.append({
                    "prompt_id": f"{dataset}/doc-{c}", "dataset": dataset, "context_ids": [1, 2, 3],
                    "context_text": f"Context {c} of {dataset}:", "output_ids": ids,
                    "output_text": WordCodec().decode(ids), "reference_text": WordCodec().decode(ref),
                    "reference_ids": ref, "seed": c,
                    "step_entropy": [round(rng.random() * 4, 5) for _ in range(new_tokens)],
                    "step_top1": [round(rng.random(), 5) for _ in range(new_tokens)],
                })  # fmt: skip
        write_records(root / "cells" / cell / "generations.jsonl", records)
    return root
