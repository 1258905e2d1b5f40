"""Decoders: greedy, sampling baselines, penalties and the citation blocker as compositions; two searches.

Every decoder continues a batch of contexts and reports per-step statistics of the raw model
distribution; sampled ones draw with one generator per row (seeded from (seed, prompt id)), so a
continuation never depends on the batch it ran in. See docs/decoders.md for the pinned definitions.
"""

from harness.api import hookimpl
from harness_plugins.decoders.beam import Beam
from harness_plugins.decoders.citation_blocked import CitationBlocked
from harness_plugins.decoders.contrastive import Contrastive
from harness_plugins.decoders.entropy_matched import EntropyMatchedTemperature
from harness_plugins.decoders.greedy import Greedy
from harness_plugins.decoders.min_p import MinP
from harness_plugins.decoders.no_repeat_ngram import NoRepeatNGramGreedy
from harness_plugins.decoders.repetition_penalty import RepetitionPenaltyGreedy
from harness_plugins.decoders.static_reweight import StaticReweight
from harness_plugins.decoders.temperature import Temperature
from harness_plugins.decoders.top_k import TopK
from harness_plugins.decoders.top_p import TopP
from harness_plugins.decoders.typical import Typical

DECODERS = (
    Greedy,
    TopP,
    TopK,
    Typical,
    MinP,
    Temperature,
    RepetitionPenaltyGreedy,
    NoRepeatNGramGreedy,
    Beam,
    Contrastive,
    EntropyMatchedTemperature,
    CitationBlocked,
    StaticReweight,
)


@hookimpl
def harness_register_decoders(register):
    for decoder in DECODERS:
        register(decoder)
