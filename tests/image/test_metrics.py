"""Each image metric on hand-made 4×4 black (0) / white (1) images with known answers."""

from __future__ import annotations

import math

import pytest
from imagekit import bw_codec, image_record  # noqa: F401  (bw_codec: a fixture)

from harness.api import MetricContext
from harness.errors import InputError
from harness.scoring import score_metric

B, W = [0, 0, 0, 0], [1, 1, 1, 1]


def metric(name: str, codec=None, **params):
    from harness_plugins.metrics.image import METRICS

    cls = {c.name: c for c in METRICS}[name]
    m = cls(params)
    m.context = MetricContext(codec=codec)
    return m


def test_row_repetition_counts_rows_equal_to_the_row_above():
    stripes = image_record([W, W, W, W], 1)  # every generated row copies the one above (incl. the context row)
    alternating = image_record([W, B, W, B], 1)
    one_of_three = image_record([W, B, B, W], 1)  # row 2 repeats row 1
    near = image_record([W, [1, 1, 1, 0], W, B], 1)  # 3 of 4 pixels equal the row above, then not, then not
    m = metric("row-repetition")
    assert m.score_samples([stripes, alternating, one_of_three, near]) == [1.0, 0.0, pytest.approx(1 / 3), 0.0]
    assert metric("row-repetition", min_equal=0.75).score_samples([near]) == [pytest.approx(2 / 3)]  # W→[1110]→W
    assert m.higher_is_better is False and m.modalities == ("image",)


def test_row_repetition_without_context_rows_judges_from_the_second_row():
    record = image_record([W, W, B, B], 0)
    record["context_ids"] = [2]  # SOS only
    assert metric("row-repetition").score_samples([record]) == [pytest.approx(2 / 3)]


def test_distinct_clusters_counts_generated_colours_only():
    m = metric("distinct-clusters")
    assert m.score_samples([image_record([W, B, B, B], 1), image_record([B, [0, 1, 0, 1], B, B], 1)]) == [1.0, 2.0]


def test_mse_and_psnr_against_the_original(bw_codec):
    exact = image_record([B, W, W, B], 1, reference=[W, W, B])
    opposite = image_record([B, B, B, W], 1, reference=[W, W, B])  # every generated pixel wrong: MSE 1
    half = image_record([B, [0, 0, 1, 1], W, B], 1, reference=[W, W, B])  # 2 of 12 pixels wrong
    mse = metric("pixel-mse", bw_codec).score_samples([exact, opposite, half])
    assert mse == [0.0, 1.0, pytest.approx(2 / 12)]
    psnr = metric("psnr", bw_codec).score_samples([exact, opposite, half])
    assert psnr == [100.0, 0.0, pytest.approx(10 * math.log10(6))]


def test_colour_metrics_need_the_codec():
    with pytest.raises(InputError, match="needs the image model's codec"):
        metric("pixel-mse").score_samples([image_record([B, W, W, B], 1, reference=[W, W, B])])


def test_completion_diversity_is_the_mean_pairwise_rms_distance(bw_codec):
    black = image_record([W, B, B, B], 1, prompt_id="a")
    black2 = image_record([B, B, B, B], 1, prompt_id="b")  # context differs, generation the same
    white = image_record([B, W, W, W], 1, prompt_id="c")
    m = metric("completion-diversity", bw_codec)
    assert m.score_per_text([black, black2, white]) == [pytest.approx(0.5), pytest.approx(0.5), pytest.approx(1.0)]
    assert m.score_corpus([black, black2, white]) == pytest.approx(2 / 3)  # = mean over the 3 pairs (0, 1, 1)
    assert m.score_corpus([black, black2]) == 0.0
    interval = score_metric(m, [black, black2, white], bootstrap=50, seed=0)
    assert interval.value == pytest.approx(2 / 3)


def test_completion_diversity_within_prompts(bw_codec):
    draws = [image_record([W, B, B, B], 1, prompt_id="a", sample_idx=0), image_record([W, W, W, W], 1, prompt_id="a", sample_idx=1),
             image_record([B, B, B, B], 1, prompt_id="b", sample_idx=0), image_record([B, B, B, B], 1, prompt_id="b", sample_idx=1)]  # fmt: skip
    assert metric("completion-diversity", bw_codec, pairs="same-prompt").score_per_text(draws) == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(InputError, match="samples_per_prompt"):
        metric("completion-diversity", bw_codec, pairs="same-prompt").score_per_text(draws[:3])


def test_recognisability_of_held_out_digits(tmp_path):
    """Originals are recognised as their own digit; relabelled ones are not."""
    from harness_plugins.datasets.digits import Digits
    from harness_plugins.models.imagegpt import ImageGPT

    from harness.api import LoadContext

    codec = ImageGPT({"size": 8, "grey_levels": 16}).load_codec(LoadContext("cpu", tmp_path))
    docs = list(Digits({"start": 1200, "stop": 1260}).documents())
    records = []
    for doc in docs:
        ids = codec.encode_document(doc)
        records.append({"prompt_id": doc.id, "context_ids": ids[:17], "output_ids": ids[17:], "image_shape": [8, 8], "label": doc.label})
    m = metric("recognisability", codec, start=1500)
    right = m.score_samples(records)
    assert sum(right) / len(right) >= 0.85
    wrong = m.score_samples([r | {"label": str((int(r["label"]) + 1) % 10)} for r in records])
    assert sum(wrong) / len(wrong) <= 0.15
    blank = [r | {"output_ids": [0] * 48} for r in records]  # only the top quarter left: mostly unrecognisable
    assert sum(m.score_samples(blank)) < sum(right)


def test_shared_text_metrics_read_pixel_tokens(bw_codec):
    from harness_plugins.metrics.entropy import GenerationEntropy
    from harness_plugins.metrics.ttr import TypeTokenRatio

    record = image_record([B, [0, 1, 0, 1], B, B], 1) | {"step_entropy": [0.5] * 12}
    assert TypeTokenRatio({"window": 12}).score_samples([record]) == [2 / 12]
    assert GenerationEntropy().score_samples([record]) == [0.5]
    assert "image" in TypeTokenRatio.modalities and "image" in GenerationEntropy.modalities


def test_image_metrics_refuse_text_records():
    with pytest.raises(InputError, match="scores generations of an image model, not text"):
        metric("row-repetition").score_samples([{"prompt_id": "t", "context_ids": [1, 2], "output_ids": [3, 4]}])
