"""The public API for plugin authors: one base class per plugin kind, plus the objects they exchange.

A plugin is a class with class attributes ``name``, ``description``, ``params`` (a tuple of
:class:`harness.params.Param`), ``version`` and ``requires_packages`` (the distributions it needs beyond the
harness's own, recorded in the manifest). The core instantiates it with the resolved params
(``plugin.config`` is a plain dict) and calls its methods. Nothing here imports torch: plugins import
heavy libraries inside their methods, so ``harness plugins`` and ``harness validate`` stay fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Sequence

from harness import distributed
from harness.annotation_format import REFERENCE as ANNOTATION_REFERENCE
from harness.annotation_format import effective_judgements
from harness.annotation_format import read_events as read_annotation_events
from harness.annotation_format import text_sha256
from harness.errors import ConfigError, HarnessError, InputError, PluginError, RunError, did_you_mean
from harness.forward import ForwardOutput, inference, entropy_of, log_probs, model_device, pad_batch, padded_forward, step_stats
from harness.decoding import Generation, History, Processor, Transcript, cache_argument, decode, make_generators, pad_id, prefill, rescore, returned_cache, suppress_eos
from harness.hookspecs import Register, hookimpl
from harness.params import REQUIRED, Param
from harness.precision import PRECISIONS, native_bf16, resolve_dtype, resolve_precision, torch_dtype
from harness.sampling import derive_seed
from harness.store import atomic_write_bytes, atomic_write_json, atomic_write_jsonl, atomic_write_text, content_key
from harness.weights import load_weights_file, save_weights_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: the whole plugin SDK: a plugin (bundled ones included) imports from ``harness.api`` and nothing else of
#: ``harness``, so the core's other modules can change without breaking plugins (tests/core/test_sdk_boundary.py)
__all__ = [
    # plugin kinds and the registration hooks
    "Plugin", "ModelLoader", "Dataset", "Recipe", "Decoder", "ComposableDecoder", "Metric", "KIND_BASES",
    "hookimpl", "Register", "Param", "REQUIRED", "MODALITIES",
    # what plugins receive and return
    "Codec", "ImageCodec", "ModelHandle", "LoadContext", "ImagePayload", "Document", "FitContext", "FitOutcome",
    "Generation", "DecodeContext", "MetricContext", "SAMPLE_FIELDS", "OPTIONAL_SAMPLE_FIELDS",
    # errors (exit code 2 for the user's mistakes) and messages
    "HarnessError", "ConfigError", "InputError", "PluginError", "RunError", "did_you_mean", "log",
    # files, keys, seeds, processes
    "atomic_write_bytes", "atomic_write_json", "atomic_write_jsonl", "atomic_write_text", "content_key",
    "load_weights_file", "save_weights_file",
    "derive_seed", "distributed",
    # running a model: one padded forward, its statistics, eval mode
    "inference", "ForwardOutput", "pad_batch", "padded_forward", "log_probs", "entropy_of", "step_stats",
    "model_device",
    # human judgements written by `harness annotate` (harness.annotation_format, docs/annotation.md)
    "read_annotation_events", "effective_judgements", "text_sha256", "ANNOTATION_REFERENCE",
    # what "auto" dtypes and precisions resolve to on a device (bf16 where it is native)
    "PRECISIONS", "native_bf16", "resolve_dtype", "resolve_precision", "torch_dtype",
    # decoding: the composition loop and its parts (harness.decoding)
    "decode", "Processor", "History", "Transcript", "make_generators", "suppress_eos", "pad_id", "prefill",
    "rescore", "cache_argument", "returned_cache",
]  # fmt: skip

log = logging.getLogger("harness")

MODALITIES = ("text", "image")


class Plugin:
    """Common base: identity, schema and the resolved params of one configured instance."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    version: ClassVar[str] = "1"
    #: distribution names (as ``pip install`` spells them) this plugin imports beyond the harness's own
    #: dependencies, e.g. ``("peft",)``; their versions are recorded in the manifest of a benchmark that uses it
    requires_packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any] | None = None):
        #: the resolved params of this configured instance (schema defaults under what was given)
        defaults = {p.name: p.default for p in type(self).params if not p.required}
        self.config: dict[str, Any] = defaults | dict(config or {})

    def option(self, name: str) -> Any:
        """A param's value, falling back to the schema default when the instance was built directly."""
        if name in self.config:
            return self.config[name]
        for param in type(self).params:
            if param.name == name:
                if param.required:
                    from harness.errors import InputError

                    raise InputError(f"{self.name}: required parameter {name!r} is missing")
                return param.default
        raise KeyError(name)

    @classmethod
    def config_problems(cls, params: dict[str, Any], train: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        """Problems no single param shows (several params together; for a recipe, with its ``train:`` block),
        as (field, message) pairs: ``harness validate`` reports them at that field of the YAML entry."""
        return []

    def recipe_dependencies(self) -> tuple[str, ...]:
        """Recipes of the same benchmark (by name) whose fitted weights this instance reads: a recipe grafting
        from another fit (``FitContext.load_fitted``), a decoder estimating from one (``DecodeContext``), a
        metric comparing with one (``MetricContext.model_for``). Their fit keys join this stage's key, and
        their fits are planned (and trained first) even where no cell uses them."""
        return ()

    def data_slices(self) -> list[tuple[str, int, int | None]]:
        """Index ranges ``(source, start, stop)`` (stop None = the end) of a shared offline source this instance
        reads: images that pretrain a model, train a metric's classifier, or make a dataset. ``harness
        validate`` refuses a benchmark where two components of different kinds read overlapping ranges."""
        return []


# --------------------------------------------------------------------------- models


class Codec:
    """Turns documents into token ids and back (a tokenizer for text, a colour palette for images)."""

    modality: str = "text"
    eos_token_id: int | None = None
    pad_token_id: int | None = None

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A stable hash of everything that decides encode(); part of every data stage key."""
        raise NotImplementedError

    def special_token_ids(self) -> frozenset[int]:
        """Ids that are markup, not text (BOS, EOS, padding): stripped before data overlap is checked."""
        return frozenset(i for i in (self.eos_token_id, self.pad_token_id) if i is not None)

    def encode_document(self, doc: "Document") -> list[int]:
        """Token ids of a whole document (what the runner calls); text codecs encode ``doc.text``."""
        return self.encode(doc.text)

    # The modality's rules: what the eval protocol and the training draw mean for this codec's sequences.

    #: the ``eval:`` keys that set this codec's lengths; ``harness validate`` refuses the others
    length_keys: ClassVar[tuple[str, ...]] = ("context_tokens", "new_tokens")
    #: defaults filled into the benchmark's ``eval:`` for those keys when left out (None: the schema's own)
    length_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def static_eval_lengths(cls, spec: Any) -> tuple[int, int] | None:
        """The eval lengths when ``spec`` alone decides them (text), else None (they need the loaded codec)."""
        return int(spec.context_tokens), int(spec.new_tokens)

    def eval_lengths(self, spec: Any) -> tuple[int, int]:
        """(context tokens, continuation tokens) of the eval protocol ``spec`` (the benchmark's ``eval:``)."""
        lengths = self.static_eval_lengths(spec)
        assert lengths is not None, f"{type(self).__name__} overrides static_eval_lengths without eval_lengths"
        return lengths

    def training_length_problem(self, tokens: int) -> str | None:
        """Why ``train.tokens`` cannot be this codec's training-sequence length, or None when it can."""
        return None

    def record_extras(self) -> dict[str, Any]:
        """Fields every generation record of this codec carries (an image's shape)."""
        return {}


class ImageCodec(Codec):
    """A colour-cluster codec: an image ↔ ``[SOS] + height·width`` cluster ids, row-major.

    ``palette[k]`` is cluster k's colour as (r, g, b) in [0, 1]; ``sos_token_id`` starts every image and is
    never a pixel. ``decode`` gives the ids as text (space-separated cluster ids, SOS dropped) so
    generations.jsonl stays readable; :meth:`to_image` gives the picture. Subclasses implement
    :meth:`encode_image` (resize to height × width, quantise to the palette).
    """

    modality = "image"
    height: int = 0
    width: int = 0
    sos_token_id: int = 0
    palette: list[tuple[float, float, float]] = []

    def encode_image(self, image: ImagePayload) -> list[int]:
        raise NotImplementedError

    def encode_document(self, doc: "Document") -> list[int]:
        if doc.image is None:
            from harness.errors import InputError

            raise InputError(f'document "{doc.id}" has no image, but the model is an image model')
        return self.encode_image(doc.image)

    def encode(self, text: str) -> list[int]:
        from harness.errors import InputError

        raise InputError("an image codec encodes images, not text: pair an image model with an image dataset")

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(str(int(i)) for i in ids if int(i) != self.sos_token_id)

    def pixel_ids(self, ids: Sequence[int]) -> list[int]:
        """``ids`` without the SOS token."""
        return [int(i) for i in ids if int(i) != self.sos_token_id]

    def to_image(self, ids: Sequence[int], rows: int | None = None) -> ImagePayload:
        """RGB picture of pixel ids (SOS dropped), ``rows`` × width; missing pixels are black."""
        pixels = self.pixel_ids(ids)
        rows = rows if rows is not None else self.height
        out = bytearray(rows * self.width * 3)
        for i, k in enumerate(pixels[: rows * self.width]):
            r, g, b = self.palette[k] if 0 <= k < len(self.palette) else (0.0, 0.0, 0.0)
            out[3 * i : 3 * i + 3] = bytes(int(round(255 * min(max(c, 0.0), 1.0))) for c in (r, g, b))
        return ImagePayload(rows, self.width, 3, bytes(out))

    length_keys: ClassVar[tuple[str, ...]] = ("context_fraction",)
    length_defaults: ClassVar[dict[str, Any]] = {"context_fraction": 0.25}

    @classmethod
    def static_eval_lengths(cls, spec: Any) -> tuple[int, int] | None:
        return None  # they depend on the image size, known from the loaded codec

    def eval_lengths(self, spec: Any) -> tuple[int, int]:
        """SOS + the first round(context_fraction · height) whole rows as context; the other rows generated."""
        rows = self.context_rows(spec.context_fraction or self.length_defaults["context_fraction"])
        return 1 + rows * self.width, (self.height - rows) * self.width

    def training_length_problem(self, tokens: int) -> str | None:
        whole = 1 + self.height * self.width
        if tokens == whole:
            return None
        return f"the model trains on whole images: set it to {whole} (the start token + {self.height}×{self.width} pixels)"

    def record_extras(self) -> dict[str, Any]:
        return {"image_shape": [int(self.height), int(self.width)]}

    def context_rows(self, fraction: float) -> int:
        """Whole rows given as context for ``fraction`` of the image: round(fraction · height), within [1, height − 1]."""
        return min(max(int(round(fraction * self.height)), 1), self.height - 1)

    def palette_fingerprint(self) -> str:
        import hashlib

        text = f"{self.height}x{self.width};sos={self.sos_token_id};" + ";".join(
            ",".join(f"{c:.6f}" for c in colour) for colour in self.palette
        )
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def fingerprint(self) -> str:
        return self.palette_fingerprint()


class ModelHandle:
    """A loaded model: the torch module, its codec and how to save/restore fitted weights."""

    def __init__(self, module: "torch.nn.Module", codec: Codec, device: str, modality: str = "text"):
        self.module = module
        self.codec = codec
        self.device = device
        self.modality = modality
        #: after a sharded (FSDP) fit, on the main process: the full weights gathered from every shard, which
        #: :meth:`save_weights` writes as they are (the module itself then holds only this process's shards)
        self.gathered_state: dict[str, Any] | None = None

    def save_weights(self, directory: Path) -> None:
        """Store the current weights (or ``gathered_state``) so :meth:`load_weights` restores them (the fit cache)."""
        raise NotImplementedError

    def load_weights(self, directory: Path) -> None:
        raise NotImplementedError


@dataclass
class LoadContext:
    """What a model loader gets from the runner."""

    device: str
    cache_dir: Path


class ModelLoader(Plugin):
    """Loads a model and its codec. ``fingerprint`` names the exact weights (file hash, revision)."""

    kind = "model_loader"
    modality: ClassVar[str] = "text"
    #: the class of the codec it gives: its length rules are checked by ``harness validate`` before any load
    codec_type: ClassVar[type[Codec]] = Codec

    def fingerprint(self) -> str:
        """Extra identity beyond name+params (e.g. a weights hash); cheap, no model load."""
        return ""

    def resolved_settings(self, device: str) -> dict[str, Any]:
        """What this instance's params resolve to on ``device`` where a param leaves it open (e.g. ``dtype:
        auto`` → ``{"dtype": "bfloat16"}`` on a GPU). Part of every stage key and recorded in the manifest,
        so a CPU smoke run and a GPU run never share results. Cheap: no model load."""
        return {}

    def load(self, ctx: LoadContext) -> ModelHandle:
        raise NotImplementedError

    def load_codec(self, ctx: LoadContext) -> Codec | None:
        """The codec alone, without the weights, where that is cheap (None: the runner loads the model).

        Image loaders provide it so a warm run can derive the context length from the image size without
        loading the model."""
        return None


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class ImagePayload:
    """An image as plain bytes: ``height`` × ``width`` pixels of ``channels`` (1 grey or 3 RGB) uint8 values,
    row-major, channels last. Plain bytes keep documents hashable and the core free of numpy/PIL."""

    height: int
    width: int
    channels: int
    pixels: bytes

    def __post_init__(self) -> None:
        if self.channels not in (1, 3) or len(self.pixels) != self.height * self.width * self.channels:
            raise ValueError(
                f"image payload: {len(self.pixels)} bytes do not make {self.height}×{self.width}×{self.channels} pixels"
            )

    def to_array(self) -> Any:
        """A numpy uint8 array [height, width, channels]."""
        import numpy as np

        return np.frombuffer(self.pixels, dtype=np.uint8).reshape(self.height, self.width, self.channels)

    @classmethod
    def from_array(cls, array: Any) -> "ImagePayload":
        """From a [H, W] or [H, W, C] array of values in 0..255."""
        import numpy as np

        values = np.asarray(array)
        if values.ndim == 2:
            values = values[:, :, None]
        values = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return cls(int(values.shape[0]), int(values.shape[1]), int(values.shape[2]), values.tobytes())


@dataclass(frozen=True)
class Document:
    """One source document with an id that is stable across runs.

    Image datasets set ``image`` (and ``text`` to a short caption, or ""); ``label`` is an optional class
    name (digits: "0".."9") that image metrics such as recognisability compare against.
    """

    id: str
    text: str
    image: ImagePayload | None = None
    label: str | None = None

    def content_bytes(self) -> bytes:
        """What the dataset hash covers: the text, plus the image and label where present (text-only
        documents hash exactly as before images existed)."""
        out = self.id.encode() + b"\0" + self.text.encode() + b"\0"
        if self.image is not None:
            out += f"{self.image.height}x{self.image.width}x{self.image.channels}".encode() + self.image.pixels + b"\0"
        if self.label is not None:
            out += b"label:" + self.label.encode() + b"\0"
        return out


class Dataset(Plugin):
    """Yields documents; the runner draws training sequences and eval contexts from them."""

    kind = "dataset"
    modality: ClassVar[str] = "text"

    def documents(self) -> Iterator[Document]:
        raise NotImplementedError


# --------------------------------------------------------------------------- recipes


@dataclass
class FitContext:
    """What a recipe gets besides the training sequences.

    ``work_dir`` is private to this fit (keyed by its stage hash) and survives a crash, so a recipe keeps
    its training checkpoints there and resumes from them; the runner empties it on ``--fresh``.
    ``heldout`` are sequences of the training dataset's length drawn from documents used neither for
    training nor for evaluation: recipes log held-out loss on them and may stop early on it.
    ``curve`` receives one row per logged point (``step`` first); the runner writes them to curves.csv.
    """

    seed: int
    work_dir: Path
    progress: Callable[[int, int, dict[str, float]], None] = lambda done, total, info: None
    curve: Callable[[dict[str, float]], None] = lambda row: None
    heldout: list[list[int]] = field(default_factory=list)
    #: a separate copy of the same model with the weights another recipe fitted (see ``recipe_dependencies``)
    load_fitted: Callable[[str], ModelHandle] | None = None


class Recipe(Plugin):
    """Fits a model on training sequences in place. ``trains = False`` marks the identity recipe.

    The fit's stage key holds the params marked as affecting the result (see :class:`Param`), the training
    sequences and the run seed; the held-out sequences join it only for a recipe that selects its weights on
    them (``selects_on_heldout``, e.g. early stopping), since for the others they only feed the curve.
    """

    kind = "recipe"
    trains: ClassVar[bool] = True
    #: False for a recipe that makes its weights from the fits it reads (a graft), so its ``train:`` is optional
    needs_training_data: ClassVar[bool] = True
    selects_on_heldout: ClassVar[bool] = False
    #: defaults for the recipe's ``train:`` block (samples × tokens drawn from the training dataset, heldout)
    train_defaults: ClassVar[dict[str, int]] = {"samples": 2000, "tokens": 256}

    @classmethod
    def train_params(cls) -> tuple[Param, ...]:
        """The schema of this recipe's ``train:`` block, its defaults from ``train_defaults``: one definition
        that ``harness validate`` checks a benchmark against and ``harness plugins`` lists."""
        defaults = cls.train_defaults
        return (
            Param("dataset", str, help="training dataset name"),
            Param("samples", int, default=defaults.get("samples", 2000), min=1, help="training sequences drawn"),
            Param("tokens", int, default=defaults.get("tokens", 256), min=2, help="tokens per training sequence"),
            Param("heldout", int, default=defaults.get("heldout", 16), min=0,
                  help="held-out sequences (same length, other documents) for the fit's curve and early stopping"),
        )  # fmt: skip

    def resolved_settings(self, device: str) -> dict[str, Any]:
        """Settings that "auto" params resolve to on ``device`` (e.g. ``precision: auto`` → bf16 on a CPU with
        native bf16): part of the fit's stage key and recorded in the manifest, like a loader's dtype."""
        return {}

    def fit(self, handle: ModelHandle, sequences: list[list[int]], ctx: FitContext) -> "FitOutcome":
        """Change ``handle.module``'s weights in place; return a :class:`FitOutcome` (stored with the fit)."""
        raise NotImplementedError


@dataclass
class FitOutcome:
    """What a recipe reports about its fit, stored next to the weights (``fit`` stage) and in the manifest.

    ``steps``: optimizer updates taken; ``selected_step``: the update whose weights were kept, where a recipe
    selects (early stopping; None: the last); ``facts``: anything else JSON-able the recipe wants recorded
    (e.g. the seconds spent per phase, trainable parameter counts).
    """

    steps: int | None = None
    selected_step: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.facts)
        if self.steps is not None:
            out["steps"] = self.steps
        if self.selected_step is not None:
            out["selected_step"] = self.selected_step
        return out


# --------------------------------------------------------------------------- decoders


@dataclass
class DecodeContext:
    """Per-batch inputs besides the contexts: one seed per row, optional training data, and the EOS policy.

    ``stop_at_eos`` False (the default, ``eval.stop_at_eos``): every row runs to exactly ``new_tokens`` tokens,
    the EOS token is never chosen (its score is set to -inf before the pick; per-step statistics still come
    from the raw distribution). True: a row stops when it emits EOS; EOS is not part of its output.
    """

    seeds: list[int]
    train_sequences: list[list[int]] | None = None
    stop_at_eos: bool = False
    #: a separate copy of the decoded model with the weights another recipe fitted (see ``recipe_dependencies``);
    #: the caller frees it (``del``) when done, the handle being decoded is untouched
    load_fitted: Callable[[str], ModelHandle] | None = None
    #: the held-out token sequences of another recipe's fit (same documents its curve used)
    heldout_of: Callable[[str], list[list[int]]] | None = None
    #: identity of the weights being decoded (their fit key, or the model id for the loader's weights), so a
    #: decoder may cache what it derives from them; None outside a run
    weights_key: str | None = None


class Decoder(Plugin):
    """Continues a batch of contexts. Must depend only on (weights, context, seed), not on the batch."""

    kind = "decoder"
    deterministic: ClassVar[bool] = True

    def generate(
        self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext
    ) -> list[Generation]:
        raise NotImplementedError


class ComposableDecoder(Decoder):
    """A decoder that is a list of logits processors plus the final pick, run by :func:`harness.decoding.decode`.

    Because it only contributes processors, it can be combined with others in a benchmark's
    ``compose:`` list. ``stage`` orders the parts of a composition: ``"adjust"`` (penalties, bans,
    blocking: they only lower scores) comes before ``"warp"`` (temperature, truncation), since a ban
    applied after truncation could leave a row without any token. ``samples``: the final pick draws
    from softmax(scores) with the row's seeded generator (False: argmax); ``deterministic`` follows it.
    """

    samples: ClassVar[bool] = False
    stage: ClassVar[str] = "adjust"  # "adjust" | "warp"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.deterministic = not cls.samples

    def processors(self, handle: ModelHandle, contexts: list[list[int]], ctx: DecodeContext) -> list[Processor]:
        """Fresh processors for one batch (they may keep per-batch state), in the order they apply."""
        return []

    def generate(
        self, handle: ModelHandle, contexts: list[list[int]], new_tokens: int, ctx: DecodeContext
    ) -> list[Generation]:
        if not contexts:
            return []
        processors = self.processors(handle, contexts, ctx)
        return decode(handle, contexts, new_tokens, ctx.seeds, processors, sample=self.samples, stop_at_eos=ctx.stop_at_eos)


# --------------------------------------------------------------------------- metrics

#: the fields a generations record may carry (one JSON line per continuation)
SAMPLE_FIELDS = (
    "prompt_id",
    "dataset",
    "context_ids",
    "context_text",
    "output_ids",
    "output_text",
    "reference_text",
    "reference_ids",
    "seed",
    "step_entropy",
    "step_top1",
)
#: fields present only where they apply: several draws per prompt, a row cut short by EOS, a document label, a
#: codec's extras (an image model's ``image_shape``). A decoder's :attr:`Generation.extras` follow these.
OPTIONAL_SAMPLE_FIELDS = ("sample_idx", "stopped_at_eos", "label", "image_shape")
#: image generations carry ``image_shape`` ([height, width]); metrics check it against their modalities


@dataclass
class MetricContext:
    """What a metric may use besides the generation records (set by the runner as ``metric.context``).

    ``train_sequences``: the token ids the cell's recipe trained on (copying metrics); ``codec``: the
    evaluated model's codec; ``model``: a zero-argument callable that loads the evaluated (fitted) model on
    first use (teacher-forced metrics, featurizers); ``cache_dir``: a folder for reusable features.
    Each is None where it does not exist (``harness score`` fills what its flags provide).
    """

    train_sequences: list[list[int]] | None = None
    codec: Codec | None = None
    model: Callable[[], ModelHandle] | None = None
    cache_dir: Path | None = None
    #: identity of the evaluated weights (the fit stage key), for caching features computed with them
    model_key: str | None = None
    #: load the same model under another recipe of the benchmark, by recipe name (see recipe_dependencies)
    model_for: Callable[[str], ModelHandle] | None = None
    #: the results folder the scored generations belong to (e.g. its annotations/), when there is one
    results_dir: Path | None = None
    #: the cell (``model__recipe__decoder``) and eval dataset being scored, when scored inside a run
    cell: str | None = None
    dataset: str | None = None
    #: keep a file beside the score (a per-layer table, a plot): ``write_artifact("probes/x.csv", data)``. The bytes
    #: are stored with the score and written under the results folder by every run that shows it, warm or cold
    write_artifact: Callable[[str, bytes], None] | None = None


class Metric(Plugin):
    """Scores generations.

    ``level = "sample"``: :meth:`score_samples` returns one value per record it can score (its
    ``definition`` says which rows it skips, e.g. a row cut short by EOS under ``eval.stop_at_eos``); the
    result is their mean with a mean ± 1.96·stderr interval, and ``n`` counts the scored rows. ``level = "corpus"``: :meth:`score_corpus` returns one value for
    the whole set; the interval is a seeded bootstrap over prompts. A corpus metric whose value is the
    mean of per-text contributions computed against the whole set (Self-BLEU's leave-one-out scores) may
    also define ``score_per_text(samples) -> list[float]``; the bootstrap then resamples those. A corpus
    metric whose prompt bootstrap would mislead (MAUVE on a small sample) may define ``own_interval(samples)``
    returning None or ``{"ci_low", "ci_high", "method", "warning"}``: the runner uses it instead of the
    bootstrap (an interval always contains its value; ``warning`` is shown as a mark beside it). ``requires`` lists the record fields
    the metric reads; ``definition`` is the pinned, human-readable definition stored with results.
    """

    kind = "metric"
    level: ClassVar[str] = "sample"
    #: True/False sets the ↑/↓ and the bold "best" in leaderboards; None marks a descriptive metric
    higher_is_better: ClassVar[bool | None] = True
    requires: ClassVar[tuple[str, ...]] = ("output_text",)
    modalities: ClassVar[tuple[str, ...]] = ("text",)
    definition: ClassVar[str] = ""

    #: an expensive corpus metric may cap the bootstrap resamples (MAUVE re-clusters on each)
    max_bootstrap: ClassVar[int | None] = None
    #: set by the runner before scoring; see :class:`MetricContext`
    context: MetricContext = MetricContext()

    def input_fingerprint(self) -> str:
        """A hash of inputs the metric reads besides the records and its params (e.g. human judgement files):
        part of the score's cache key, so new inputs recompute the score. "" when there are none."""
        return ""

    def score_samples(self, samples: list[dict[str, Any]]) -> list[float]:
        raise NotImplementedError

    def score_corpus(self, samples: list[dict[str, Any]]) -> float:
        raise NotImplementedError


KIND_BASES: dict[str, type[Plugin]] = {
    "model_loader": ModelLoader,
    "dataset": Dataset,
    "recipe": Recipe,
    "decoder": Decoder,
    "metric": Metric,
}
