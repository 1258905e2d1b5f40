"""Image metrics (modality "image"): row repetition, distinct clusters, pixel MSE / PSNR against the original,
completion diversity and digit recognisability. Token TTR (``ttr``) and per-step entropy (``entropy``) also
declare the image modality and are shared with text.

Each metric reads whole pixel rows from a record's ``image_shape``; colours come from the evaluated model's
palette (``MetricContext.codec``). numpy and scikit-learn are imported inside the methods.
"""

from __future__ import annotations

from .completion_diversity import CompletionDiversity
from .distinct_clusters import DistinctClusters
from .fidelity import PSNR, PixelMSE
from .recognisability import Recognisability
from .row_repetition import RowRepetition

METRICS = (RowRepetition, DistinctClusters, PixelMSE, PSNR, CompletionDiversity, Recognisability)

__all__ = [cls.__name__ for cls in METRICS] + ["METRICS"]
