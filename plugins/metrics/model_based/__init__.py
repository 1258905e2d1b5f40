"""Model-based metrics: MAUVE and coherence on text features, and teacher-forced model-distribution metrics.

Registered by the parent package's hook (``harness_plugins.metrics``). Only light modules are imported here: torch, transformers,
numpy and mauve are imported inside the metric methods.
"""

from __future__ import annotations

from .coherence import Coherence
from .mauve_metric import Mauve
from .perplexity import TeacherForcedPerplexity
from .tf_entropy import TeacherForcedEntropy
from .tf_topk_prob import TeacherForcedTopKProb
from .top1_agreement import Top1Agreement

METRICS = (Mauve, Coherence, TeacherForcedEntropy, TeacherForcedTopKProb, TeacherForcedPerplexity, Top1Agreement)

__all__ = [
    "METRICS",
    "Coherence",
    "Mauve",
    "TeacherForcedEntropy",
    "TeacherForcedPerplexity",
    "TeacherForcedTopKProb",
    "Top1Agreement",
]
