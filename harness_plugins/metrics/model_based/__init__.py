"""Model-based metrics: MAUVE and coherence on text features, teacher-forced model-distribution metrics, and an LLM judge.

Registered by the parent package's hook (``harness_plugins.metrics``). Only light modules are imported here: torch, transformers,
numpy and mauve are imported inside the metric methods.
"""

from __future__ import annotations

from .coherence import Coherence
from .judge_preference import JudgePreference
from .layer_geometry import LayerGeometry
from .mauve_metric import Mauve
from .perplexity import TeacherForcedPerplexity
from .rank_probes import BaseDivergence, BaseRank
from .tf_entropy import TeacherForcedEntropy
from .tf_topk_prob import TeacherForcedTopKProb
from .top1_agreement import Top1Agreement

METRICS = (
    Mauve, Coherence, TeacherForcedEntropy, TeacherForcedTopKProb, TeacherForcedPerplexity, Top1Agreement, JudgePreference,
    BaseRank, BaseDivergence, LayerGeometry,
)  # fmt: skip

__all__ = [
    "METRICS",
    "BaseDivergence",
    "BaseRank",
    "Coherence",
    "JudgePreference",
    "LayerGeometry",
    "Mauve",
    "TeacherForcedEntropy",
    "TeacherForcedPerplexity",
    "TeacherForcedTopKProb",
    "Top1Agreement",
]
