"""``example-char-llama``: a random-init Llama over a 40-character alphabet, built in-process (no downloads).

Shows the two halves of a model loader: a :class:`~harness.api.Codec` (text ↔ ids, plus a fingerprint that
goes into every data stage key) and a :class:`~harness.api.ModelHandle` that can save and restore fitted
weights (the fit cache). The module is a transformers ``LlamaForCausalLM``, so every bundled decoder and
metric works with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from harness.api import Codec, hookimpl, LoadContext, ModelHandle, ModelLoader, Param

ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789,.?"
PAD, EOS, FIRST = 0, 1, 2


class CharCodec(Codec):
    """Lower-cased characters of :data:`ALPHABET`; anything else becomes ``?``."""

    modality = "text"
    pad_token_id = PAD
    eos_token_id = EOS

    def encode(self, text: str) -> list[int]:
        unknown = ALPHABET.index("?")
        return [FIRST + (ALPHABET.index(c) if c in ALPHABET else unknown) for c in text.lower()]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(ALPHABET[i - FIRST] for i in ids if FIRST <= i < FIRST + len(ALPHABET))

    def fingerprint(self) -> str:
        return hashlib.sha256(("char:" + ALPHABET).encode()).hexdigest()[:20]


class SafetensorsHandle(ModelHandle):
    """Fitted weights are stored as one safetensors file in the directory the runner gives."""

    def save_weights(self, directory: Path) -> None:
        from safetensors.torch import save_model

        directory.mkdir(parents=True, exist_ok=True)
        save_model(self.module, str(directory / "model.safetensors"))

    def load_weights(self, directory: Path) -> None:
        from safetensors.torch import load_model

        load_model(self.module, str(directory / "model.safetensors"), device=str(self.device))


class CharLlama(ModelLoader):
    name = "example-char-llama"
    description = "A random-init character-level Llama (40 symbols) built in-process; for trying plugins offline"
    version = "1"
    params = (
        Param("seed", int, default=0, help="initialisation seed"),
        Param("hidden", int, default=32, min=8, help="hidden size (a multiple of 4)"),
        Param("layers", int, default=2, min=1, help="transformer layers"),
    )

    def load(self, ctx: LoadContext) -> ModelHandle:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(self.option("seed"))
        hidden = self.option("hidden")
        config = LlamaConfig(
            vocab_size=FIRST + len(ALPHABET), hidden_size=hidden, intermediate_size=2 * hidden,
            num_hidden_layers=self.option("layers"), num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=512, bos_token_id=None, eos_token_id=EOS, pad_token_id=PAD,
        )  # fmt: skip
        module = LlamaForCausalLM(config).to(ctx.device)
        module.eval()
        return SafetensorsHandle(module, CharCodec(), device=ctx.device)


@hookimpl
def harness_register_model_loaders(register):
    register(CharLlama)
