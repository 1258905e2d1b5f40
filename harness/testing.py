"""Helpers for testing plugins against the real harness: a tiny offline model, a corpus writer, a benchmark runner.

The harness's own tests and third-party plugin packages use the same helpers, so a plugin's tests exercise
the same paths a user's ``harness run`` does, in seconds, with no network::

    from harness.testing import make_corpus, run_benchmark, tiny_benchmark

    def test_my_metric_runs(tmp_path):
        bench = tiny_benchmark(tmp_path, metrics={"mine": {"plugin": "my-metric"}})
        summary = run_benchmark(bench, tmp_path)          # installed plugins + the tiny model loader
        assert {row["metric"] for row in summary.rows} == {"mine"}

Importing this module imports no torch (the tiny model imports it when built), and no pytest.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from harness.api import Codec, LoadContext, ModelHandle, ModelLoader, Plugin, load_weights_file, save_weights_file
from harness.params import Param

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from harness.config import Benchmark
    from harness.runner import RunSummary

__all__ = [
    "ByteCodec",
    "TinyHandle",
    "TinyLlamaLoader",
    "tiny_llama",
    "make_corpus",
    "write_yaml",
    "tiny_benchmark",
    "load_registry",
    "load_test_benchmark",
    "run_benchmark",
    "BenchmarkRun",
    "registered",
    "run_cli",
]

#: ByteCodec ids: 0 pads, 1 ends a text, byte b is b + 2
PAD = 0
EOS = 1
OFFSET = 2
WORDS = (
    "river stone light garden window market winter silver forest letter music paper bridge harbor "
    "mountain candle orange valley thunder shadow quiet yellow engine island morning copper field"
).split()


class ByteCodec(Codec):
    """UTF-8 bytes shifted by 2 (0 = pad, 1 = eos): a codec with no files and no downloads."""

    modality = "text"
    eos_token_id = EOS
    pad_token_id = PAD

    def encode(self, text: str) -> list[int]:
        return [b + OFFSET for b in text.encode("utf-8")]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(i - OFFSET for i in ids if i >= OFFSET).decode("utf-8", errors="replace")

    def fingerprint(self) -> str:
        return "bytes+2"


class TinyHandle(ModelHandle):
    """A handle whose fitted weights are one safetensors file (what the fit cache stores and restores)."""

    def save_weights(self, directory: Path) -> None:
        save_weights_file(self, directory / "weights.safetensors")

    def load_weights(self, directory: Path) -> None:
        load_weights_file(self.module, directory / "weights.safetensors")


def tiny_llama(seed: int = 0, hidden: int = 32, layers: int = 2) -> "torch.nn.Module":
    """A random-init Llama over :class:`ByteCodec` ids (258 tokens), in eval mode; same seed, same weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=256 + OFFSET,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


class TinyLlamaLoader(ModelLoader):
    """``tiny-llama``: :func:`tiny_llama` with :class:`ByteCodec`. Not installed as a plugin: pass it to
    :func:`run_benchmark` (``extra=``) or register it from a local plugin file in your tests."""

    name = "tiny-llama"
    description = "A 2-layer random-init Llama over bytes (tests only)."
    params = (
        Param("seed", int, default=0, help="init seed"),
        Param("hidden", int, default=32, min=8),
        Param("layers", int, default=2, min=1),
        Param("dtype", str, default="float32", choices=("float32", "bfloat16"), help="weights dtype"),
    )

    def resolved_settings(self, device: str) -> dict[str, Any]:
        return {"dtype": self.option("dtype")}

    def load(self, ctx: LoadContext) -> ModelHandle:
        import torch

        module = tiny_llama(self.option("seed"), self.option("hidden"), self.option("layers"))
        module = module.to(device=ctx.device, dtype=getattr(torch, self.option("dtype")))
        return TinyHandle(module, ByteCodec(), device=ctx.device)


def save_tiny_hf_model(folder: Path, texts: Sequence[str], vocab_size: int = 300, chat_template: str | None = None) -> Path:
    """A random-init 2-layer Llama with a byte-level BPE tokenizer trained on ``texts``, saved like a hub model.

    For testing loaders and metrics that read a model directory (``hf-causal-lm``, local judges) offline.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    backend.train_from_iterator(list(texts), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def make_corpus(path: Path, documents: int = 40, words: int = 60, seed: int = 0) -> Path:
    """A deterministic ``local-text`` corpus: documents of random words separated by blank lines."""
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(documents)]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def write_yaml(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML (key order kept) and return the path."""
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def tiny_benchmark(tmp_path: Path, name: str = "tiny", **overrides: Any) -> dict[str, Any]:
    """A small valid benchmark (as a dict) on ``tiny-llama`` and two corpora written into ``tmp_path``:
    no-op and hyperfit recipes, greedy and top-p, TTR / Self-BLEU / entropy. Top-level keys in ``overrides``
    replace the defaults' (e.g. ``metrics={...}``)."""
    corpus = make_corpus(tmp_path / "corpus.txt")
    other = make_corpus(tmp_path / "other.txt", seed=1)
    bench: dict[str, Any] = {
        "name": name,
        "seed": 0,
        "models": {"tiny": {"loader": "tiny-llama"}},
        "datasets": {
            "train-set": {"plugin": "local-text", "path": str(corpus)},
            "other-set": {"plugin": "local-text", "path": str(other)},
        },
        "recipes": {
            "base": {"plugin": "none"},
            "fit": {"plugin": "hyperfit", "train": {"dataset": "train-set", "samples": 8, "tokens": 24},
                    "lr": 3.0e-3, "epochs": 2, "batch_size": 4},
        },
        "decoders": {"greedy": {"plugin": "greedy"}, "top-p": {"plugin": "top-p"}},
        "eval": {"datasets": ["train-set", "other-set"], "contexts": 6, "context_tokens": 12, "new_tokens": 16,
                 "batch_size": 4, "bootstrap": 50,
                 "overlap_ngram": 24},  # byte tokens over a 27-word vocabulary: 13 bytes recur by chance
        "metrics": {"ttr": {"plugin": "ttr", "window": 16}, "self-bleu": {"plugin": "self-bleu"},
                    "entropy": {"plugin": "entropy"}},
    }  # fmt: skip
    bench.update(overrides)
    return bench


def load_registry(plugin_files: Iterable[str | Path] = (), extra: Iterable[type[Plugin]] = ()) -> Any:
    """The registry ``harness`` itself would build (installed entry points + ``plugin_files``), plus ``extra``
    plugin classes registered directly (a name clash is the same error a user would see)."""
    from harness.plugin_manager import PluginOptions, load_plugins
    from harness.registry import Source

    loaded = load_plugins(PluginOptions(local_files=tuple(str(p) for p in plugin_files), strict=True))
    for cls in extra:
        loaded.registry.add(cls.kind, cls, Source("harness.testing"))
    return loaded.registry


def load_test_benchmark(bench: Mapping[str, Any] | str | Path, tmp_path: Path, registry: Any = None) -> "Benchmark":
    """Validate a benchmark (a dict is written to ``tmp_path/<name>.yaml`` first), as ``harness validate`` does."""
    from harness.config import load_benchmark

    path = Path(bench) if isinstance(bench, (str, Path)) else write_yaml(tmp_path / f"{bench['name']}.yaml", dict(bench))
    return load_benchmark(path, registry if registry is not None else load_registry(extra=(TinyLlamaLoader,)))


@dataclass
class BenchmarkRun:
    """What :func:`run_benchmark` returns: the runner's summary, the results folder and ``scores.csv`` rows."""

    summary: "RunSummary"
    results_dir: Path
    rows: list[dict[str, str]]

    def value(self, metric: str, **match: str) -> float:
        """The one score of ``metric`` whose row matches ``match`` (model=, recipe=, decoder=, dataset=)."""
        hits = [r for r in self.rows if r["metric"] == metric and all(r[k] == v for k, v in match.items())]
        if len(hits) != 1:
            raise LookupError(f"{len(hits)} rows for metric {metric!r} with {match}")
        return float(hits[0]["value"])


def run_benchmark(
    bench: Mapping[str, Any] | str | Path,
    tmp_path: Path,
    plugin_files: Iterable[str | Path] = (),
    extra: Iterable[type[Plugin]] = (TinyLlamaLoader,),
    device: str = "cpu",
    fresh: bool = False,
) -> BenchmarkRun:
    """Validate and run a benchmark end to end (fit, generate, score, report) into ``tmp_path``.

    Results go to ``tmp_path/results/<name>/``, the stage cache to ``tmp_path/cache``: a second call with the
    same ``tmp_path`` reuses every stored stage (test resuming that way), ``fresh=True`` recomputes them.
    """
    from harness.runner import Runner, RunOptions

    registry = load_registry(plugin_files, extra)
    benchmark = load_test_benchmark(bench, tmp_path, registry)
    options = RunOptions(results_root=tmp_path / "results", cache_root=tmp_path / "cache", device=device, fresh=fresh)
    summary = Runner(benchmark, options).run()
    with (summary.results_dir / "scores.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return BenchmarkRun(summary, summary.results_dir, rows)


def registered(module: Any) -> dict[str, list[type[Plugin]]]:
    """Call every ``harness_register_*`` hook a plugin module implements; the classes it registers, per kind.

    The module goes through pluggy and the same per-plugin dispatch as an entry point
    (:func:`harness.plugin_manager.call_hook`), so a misspelt hook name or a wrong argument fails here.
    """
    from harness import hookspecs
    from harness.plugin_manager import call_hook, new_plugin_manager

    manager = new_plugin_manager()
    manager.register(module)
    manager.check_pending()
    out: dict[str, list[type[Plugin]]] = {}
    for kind, hook in hookspecs.HOOK_BY_KIND.items():
        got: list[type[Plugin]] = []
        call_hook(manager, module, hook, got.append)
        if got:
            out[kind] = got
    return out


def run_cli(args: Sequence[str]) -> tuple[int, str]:
    """Run ``harness ARGS...`` in-process through the real entry point (its error messages and exit codes);
    returns (exit code, stdout + stderr)."""
    import contextlib
    import io

    from harness.cli import main

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue()
