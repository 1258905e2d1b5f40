"""``imagegpt``: an ImageGPT checkpoint (hub id or local directory), or a small random-init one to pretrain offline.

The codec is ImageGPT's own colour-cluster processor (``ImageGPTImageProcessor``): an image is resized to the
model's size, each pixel replaced by its nearest palette colour's index, and the ids are prefixed with the
SOS token (``vocab_size − 1``, which the model's head never predicts). Dropout is switched off at load, as
the paper's code does ("disable dropouts to enable hyperfitting"), so every recipe fits a dropout-free model.

No pretrained ImageGPT exists offline; without ``id`` the loader builds a random-init model with a grey
palette of ``grey_levels`` levels at ``size`` × ``size`` pixels (seeded by ``init_seed``). With
``pretrain_on`` it then pretrains that model once with the bundled ``pretrain`` recipe on a slice of an
offline image set (``pretrain_start`` … ``pretrain_stop``) and caches the weights under the model cache, keyed
by every parameter that decides them: the stand-in for downloading a pretrained checkpoint. Benchmarks must
draw their training and eval images from another slice; ``harness validate`` checks that they do.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness_plugins.models._hf_handle import (
    DTYPES,
    WEIGHTS_FILE,
    CausalLMHandle,
    model_fingerprint,
    resolved_dtype_name,
    quiet_transformers,
    torch_dtype,
)

from harness.api import FitContext, ImageCodec, ImagePayload, InputError, LoadContext, ModelHandle, ModelLoader, Param

DROPOUTS = ("embd_pdrop", "resid_pdrop", "attn_pdrop")
#: offline image sets a random-init model can be pretrained on (registered dataset plugins of this package)
PRETRAIN_SOURCES = ("digits", "fashion-mnist")


class ImageGPTCodec(ImageCodec):
    """``ImageGPTImageProcessor`` as a codec; palette colours are the processor's clusters mapped from [−1, 1]."""

    def __init__(self, processor: Any):
        import numpy as np

        clusters = getattr(processor, "clusters", None)
        if clusters is None:
            raise InputError("imagegpt: the image processor has no colour clusters (not an ImageGPT processor?)")
        clusters = np.asarray(clusters, dtype=np.float64).reshape(-1, 3)
        size = processor.size
        self.processor = processor
        self.height = int(size["height"])
        self.width = int(size["width"])
        self.palette = [tuple(float((c + 1.0) / 2.0) for c in row) for row in clusters]
        self.sos_token_id = len(self.palette)  # vocab_size − 1: the palette, then SOS
        self.eos_token_id = None  # an image ends when it is full, not at a token
        self.pad_token_id = self.sos_token_id

    def fingerprint(self) -> str:
        """The palette, size and every processor setting (resize method, normalisation) that decides encode()."""
        settings = self.processor.to_json_string()
        return hashlib.sha256((self.palette_fingerprint() + settings).encode()).hexdigest()[:20]

    def encode_image(self, image: ImagePayload) -> list[int]:
        import numpy as np

        array = image.to_array()
        if array.shape[2] == 1:
            array = np.repeat(array, 3, axis=2)
        ids = self.processor(images=array, return_tensors=None, input_data_format="channels_last")["input_ids"][0]
        return [self.sos_token_id] + [int(i) for i in ids]


def grey_processor(levels: int, size: int) -> Any:
    """An ImageGPT processor with ``levels`` evenly spaced greys (black … white) at size × size pixels."""
    import numpy as np
    from transformers import ImageGPTImageProcessor

    grey = np.linspace(-1.0, 1.0, levels)
    return ImageGPTImageProcessor(clusters=np.stack([grey, grey, grey], axis=1), size={"height": size, "width": size})


def random_imagegpt(levels: int, size: int, n_embd: int, n_layer: int, n_head: int, seed: int) -> Any:
    """A seeded random-init ImageGPT for ``levels`` colours at size × size (room for SOS + every pixel)."""
    import torch
    from transformers import ImageGPTConfig, ImageGPTForCausalImageModeling

    config = ImageGPTConfig(
        vocab_size=levels + 1, n_positions=size * size + 1, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        **{name: 0.0 for name in DROPOUTS},
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ImageGPTForCausalImageModeling(config)



class ImageGPT(ModelLoader):
    name = "imagegpt"
    description = (
        "ImageGPT (openai/imagegpt-small|medium|large or a local dir) with its colour-cluster codec; without `id`, "
        "a small random-init ImageGPT with a grey palette, to pretrain offline."
    )
    version = "1"
    modality = "image"
    codec_type = ImageGPTCodec
    params = (
        Param("id", str, default=None, help="hub id (openai/imagegpt-large) or local directory; omit for random init"),
        Param("revision", str, default=None, help="hub revision; pin it for reproducibility"),
        Param("dtype", str, default="auto", choices=DTYPES, help="auto: bfloat16 on a GPU that supports it, else float32"),
        Param("size", int, default=16, min=2, help="random init: image side in pixels (images are resized to it)"),
        Param("grey_levels", int, default=16, min=2, max=4096, help="random init: palette of evenly spaced greys"),
        Param("n_embd", int, default=128, min=8, help="random init: width"),
        Param("n_layer", int, default=4, min=1, help="random init: transformer blocks"),
        Param("n_head", int, default=4, min=1, help="random init: attention heads (must divide n_embd)"),
        Param("init_seed", int, default=0, min=0, help="random init: seed of the initial weights"),
        Param("pretrain_on", str, default=None, choices=PRETRAIN_SOURCES,
              help="random init: pretrain once (cached) on this offline image set with the `pretrain` recipe"),
        Param("pretrain_start", int, default=0, min=0, help="first pretraining image (index into the set)"),
        Param("pretrain_stop", int, default=None, min=1, help="stop before this image (default: the end)"),
        Param("pretrain_epochs", int, default=10, min=1, help="pretraining passes over those images"),
        Param("pretrain_lr", float, default=2e-3, min=0.0, exclusive_min=True, help="peak lr (AdamW, warmup + cosine)"),
        Param("pretrain_batch_size", int, default=32, min=1, help="images per pretraining update"),
        Param("threads", int, default=0, min=0,
              help="torch intra-op threads for this process (0 = leave as is); 1 keeps a tiny model fast on a shared CPU"),
    )  # fmt: skip

    def fingerprint(self) -> str:
        source = self.option("id")
        if source:
            return model_fingerprint(source, self.option("revision"))
        return self.pretrain_key() if self.option("pretrain_on") else ""

    def resolved_settings(self, device: str) -> dict[str, str]:
        return {"dtype": resolved_dtype_name(self.option("dtype"), device)}

    def data_slices(self) -> list[tuple[str, int, int | None]]:
        source = self.option("pretrain_on")
        if self.option("id") or not source:
            return []
        name = "fashion-mnist train" if source == "fashion-mnist" else source
        return [(name, self.option("pretrain_start"), self.option("pretrain_stop"))]

    def pretrain_key(self) -> str:
        """Identity of the pretrained weights: every param and the pretrain recipe's version."""
        from harness_plugins.recipes.pretrain import Pretrain

        params = {k: v for k, v in sorted(self.config.items()) if k not in ("id", "revision", "dtype", "threads")}
        text = json.dumps({"params": params, "recipe": Pretrain.version, "loader": self.version}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def _check_source(self) -> str | None:
        source = self.option("id")
        if source and source.startswith((".", "/", "~")) and not Path(source).expanduser().is_dir():
            raise InputError(f'model "{source}" could not be loaded: no such directory {source}')
        if not source and self.option("n_embd") % self.option("n_head"):
            raise InputError(f"imagegpt: n_head {self.option('n_head')} does not divide n_embd {self.option('n_embd')}")
        return source

    def load_codec(self, ctx: LoadContext) -> ImageCodec:
        quiet_transformers()
        source = self._check_source()
        if not source:
            return ImageGPTCodec(grey_processor(self.option("grey_levels"), self.option("size")))
        from transformers import ImageGPTImageProcessor

        try:
            processor = ImageGPTImageProcessor.from_pretrained(source, revision=self.option("revision"))
        except (OSError, ValueError) as exc:
            raise InputError(_load_failure(source, exc)) from None
        return ImageGPTCodec(processor)

    def load(self, ctx: LoadContext) -> ModelHandle:
        codec = self.load_codec(ctx)
        if self.option("threads"):
            import torch

            # a sub-million-parameter model gains nothing from intra-op threads, and when other processes share
            # the cores, spinning OpenMP threads slow its small matmuls down many times over
            torch.set_num_threads(self.option("threads"))
        source = self.option("id")
        if not source:
            module = random_imagegpt(
                self.option("grey_levels"), self.option("size"), self.option("n_embd"), self.option("n_layer"),
                self.option("n_head"), self.option("init_seed"),
            )  # fmt: skip
            if self.option("pretrain_on"):
                handle = CausalLMHandle(module.to(ctx.device), codec, device=ctx.device, modality="image")
                self._pretrained(handle, Path(ctx.cache_dir))
        else:
            from transformers import ImageGPTForCausalImageModeling

            try:
                module = ImageGPTForCausalImageModeling.from_pretrained(
                    source, revision=self.option("revision"), dtype=torch_dtype(self.option("dtype"), ctx.device),
                    **{name: 0.0 for name in DROPOUTS},
                )  # fmt: skip
            except (OSError, ValueError) as exc:
                raise InputError(_load_failure(source, exc)) from None
        vocab = module.config.vocab_size
        if vocab != codec.sos_token_id + 1:
            raise InputError(
                f'model "{source}": vocab_size {vocab} does not match its processor\'s {codec.sos_token_id} colour '
                "clusters + SOS"
            )
        module.to(ctx.device)
        module.eval()
        return CausalLMHandle(module, codec, device=ctx.device, modality="image")

    def pretrain_images(self) -> Any:
        """The dataset plugin instance holding the pretraining slice."""
        from harness_plugins.datasets.digits import Digits
        from harness_plugins.datasets.fashion_mnist import FashionMNIST

        source = {"digits": Digits, "fashion-mnist": FashionMNIST}[self.option("pretrain_on")]
        return source({"start": self.option("pretrain_start"), "stop": self.option("pretrain_stop")})

    def _pretrained(self, handle: CausalLMHandle, cache_dir: Path) -> None:
        """Load the cached pretrained weights, or pretrain now and cache them (atomically: a killed run redoes it)."""
        from harness_plugins.recipes.pretrain import Pretrain

        folder = cache_dir / "imagegpt-pretrained" / self.pretrain_key()
        if (folder / WEIGHTS_FILE).is_file():
            handle.load_weights(folder)
            return
        docs = list(self.pretrain_images().documents())
        sequences = [handle.codec.encode_document(doc) for doc in docs]
        recipe = Pretrain({
            "epochs": self.option("pretrain_epochs"), "lr": self.option("pretrain_lr"),
            "batch_size": min(self.option("pretrain_batch_size"), len(sequences)), "curve_every": 0,
        })  # fmt: skip
        label = f"{self.option('pretrain_on')}[{self.option('pretrain_start')}:{self.option('pretrain_stop') or ''}]"
        started = time.perf_counter()
        reported = [0]

        def progress(done: int, total: int, info: dict[str, float]) -> None:
            if done == total or done - reported[0] >= max(1, total // 10):
                reported[0] = done
                loss = info.get("loss")
                sys.stderr.write(
                    f"pretraining imagegpt on {label} ({len(sequences)} images): update {done}/{total}"
                    + (f", loss {loss:.3f}" if isinstance(loss, float) else "")
                    + f", {time.perf_counter() - started:.0f}s\n"
                )

        work = cache_dir / "imagegpt-pretrained" / f"{folder.name}.work"
        work.mkdir(parents=True, exist_ok=True)
        recipe.fit(handle, sequences, FitContext(seed=self.option("init_seed"), work_dir=work, progress=progress))
        staging = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        handle.save_weights(staging)
        (staging / "pretraining.json").write_text(
            json.dumps({"images": len(sequences), "source": label, "seconds": round(time.perf_counter() - started, 1),
                        "params": {k: v for k, v in self.config.items() if k.startswith(("pretrain", "size", "grey", "n_", "init"))}},
                       indent=2, sort_keys=True)
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        shutil.rmtree(work, ignore_errors=True)
        handle.module.eval()


def _load_failure(source: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = (
        "check the directory holds an ImageGPT model (config.json, preprocessor_config.json, weights)"
        if Path(source).expanduser().exists()
        else "a hub id needs network access or a copy in the Hugging Face cache; omit `id` for an offline random-init "
        "model to pretrain"
    )
    return f'model "{source}" could not be loaded: {first}; {hint}'
