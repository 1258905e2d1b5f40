"""Bundled metrics: the paper's TTR, Self-BLEU and generation entropy.

Only light modules are imported here; sacrebleu and numpy are imported inside the metric methods.
"""

from __future__ import annotations

from harness.hookspecs import Register, hookimpl

from .entropy import GenerationEntropy
from .self_bleu import SelfBLEU
from .ttr import TypeTokenRatio

__all__ = ["GenerationEntropy", "SelfBLEU", "TypeTokenRatio", "harness_register_metrics"]


@hookimpl
def harness_register_metrics(register: Register) -> None:
    for cls in (TypeTokenRatio, SelfBLEU, GenerationEntropy):
        register(cls)
