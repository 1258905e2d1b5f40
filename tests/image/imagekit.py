"""Helpers for the image tests: tiny random-init ImageGPT fixtures (built in-process, no downloads) and hand-made
image records. Not a conftest.py: the tests root already has one, and `from conftest import` must stay unambiguous."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.api import LoadContext


def tiny_loader(size: int = 8, levels: int = 4, **extra: Any):
    from harness_plugins.models.imagegpt import ImageGPT

    return ImageGPT({"size": size, "grey_levels": levels, "n_embd": 16, "n_layer": 2, "n_head": 2} | extra)


@pytest.fixture(scope="module")
def igpt(tmp_path_factory: pytest.TempPathFactory):
    """An 8×8 ImageGPT with 4 greys (black, dark, light, white): vocab 5, SOS = 4."""
    return tiny_loader().load(LoadContext("cpu", tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def bw_codec():
    """A 4×4 codec with two colours: 0 = black, 1 = white; SOS = 2."""
    from harness_plugins.models.imagegpt import ImageGPTCodec, grey_processor

    return ImageGPTCodec(grey_processor(2, 4))


def image_record(rows: list[list[int]], context_rows: int, reference: list[list[int]] | None = None, **extra: Any) -> dict:
    """A generations record of a 4-wide image: SOS (2) + context rows, then the generated rows."""
    width = len(rows[0])
    flat = [i for row in rows for i in row]
    record = {
        "prompt_id": extra.pop("prompt_id", "p"),
        "context_ids": [2] + flat[: context_rows * width],
        "output_ids": flat[context_rows * width :],
        "image_shape": [len(rows), width],
    }
    if reference is not None:
        record["reference_ids"] = [i for row in reference for i in row]
    return record | extra


def write_bench(tmp_path: Path, name: str = "img", **overrides: Any) -> Path:
    """A small image benchmark on an 8×8 random-init ImageGPT and the digits."""
    import yaml

    bench: dict[str, Any] = {
        "name": name,
        "seed": 0,
        "models": {"igpt": {"loader": "imagegpt", "size": 8, "grey_levels": 8, "n_embd": 16, "n_layer": 2, "n_head": 2}},
        "datasets": {"digits": {"plugin": "digits", "stop": 300}},
        "recipes": {
            "base": {"plugin": "none"},
            "fit": {"plugin": "hyperfit", "train": {"dataset": "digits", "samples": 8, "tokens": 65}, "lr": 3.0e-3,
                    "epochs": 2, "batch_size": 4, "curve_every": 0},
        },
        "decoders": {"greedy": {"plugin": "greedy"}, "blocked": {"plugin": "citation-blocked", "window": 4}},
        "eval": {"datasets": ["digits"], "contexts": 4, "batch_size": 4, "bootstrap": 20},
        "metrics": {"row-repetition": {"plugin": "row-repetition"}, "ttr": {"plugin": "ttr", "window": 48}},
        "matrix": [{"recipe": "base", "decoder": "greedy"}, {"recipe": "fit", "decoder": ["greedy", "blocked"]}],
    }  # fmt: skip
    bench.update(overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(bench, sort_keys=False), encoding="utf-8")
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """``harness ARGS`` in-process: (exit code, stdout + stderr)."""
    from harness.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err
