"""Text metrics refuse image generations and image metrics refuse text ones: one clear message, no crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_PLUGINS, tiny_benchmark, write_yaml
from imagekit import image_record, run_cli, write_bench

from harness.config import load_benchmark
from harness.errors import ConfigError
from harness.plugin_manager import PluginOptions, load_plugins


def test_text_metric_on_an_image_model_is_a_config_error(tmp_path: Path):
    path = write_bench(tmp_path, metrics={"self-bleu": {"plugin": "self-bleu"}, "ttr": {"plugin": "ttr"}})
    with pytest.raises(ConfigError) as err:
        load_benchmark(path, load_plugins(PluginOptions()).registry)
    text = str(err.value)
    assert 'metrics.self-bleu.plugin: metric "self-bleu" handles text, but model "igpt" is image' in text
    assert "ttr" not in text.replace("self-bleu", "")  # ttr declares both modalities


def test_image_metric_and_dataset_on_a_text_model_are_config_errors(tmp_path: Path):
    bench = tiny_benchmark(tmp_path)
    bench["metrics"]["rows"] = {"plugin": "row-repetition"}
    bench["datasets"]["digits"] = {"plugin": "digits"}
    with pytest.raises(ConfigError) as err:
        load_benchmark(write_yaml(tmp_path / "t.yaml", bench), load_plugins(PluginOptions(local_files=(str(TINY_PLUGINS),))).registry)
    text = str(err.value)
    assert 'metrics.rows.plugin: metric "row-repetition" handles image, but model "tiny" is text' in text
    assert 'datasets.digits.plugin: dataset "digits" handles image, but model "tiny" is text' in text


def test_image_dataset_for_a_text_model_names_the_culprit(tmp_path: Path):
    path = write_bench(tmp_path, datasets={"digits": {"plugin": "digits"}, "wiki": {"plugin": "embedded-wikipedia"}})
    with pytest.raises(ConfigError, match='datasets.wiki.plugin: dataset "embedded-wikipedia" handles text'):
        load_benchmark(path, load_plugins(PluginOptions()).registry)


def test_score_cli_refuses_the_other_modality(tmp_path: Path, capsys):
    images = tmp_path / "images.jsonl"
    images.write_text(json.dumps(image_record([[0, 0, 1, 1]] * 4, 1) | {"output_text": "0 0 1 1"}) + "\n")
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"prompt_id": "a", "output_text": "a b c", "output_ids": [1, 2, 3]}) + "\n")
    code, output = run_cli(["score", "--metric", "self-bleu", str(images)], capsys)
    assert code == 2 and 'is a generation of an image model, but metric "self-bleu" handles text only' in output
    code, output = run_cli(["score", "--metric", "row-repetition", str(texts)], capsys)
    assert code == 2 and 'generation of a text model, but metric "row-repetition" handles image only' in output
    code, output = run_cli(["score", "--metric", "row-repetition", str(images)], capsys)
    assert code == 0, output


def test_pretraining_and_classifier_images_must_not_be_benchmark_images(tmp_path: Path):
    model = {"loader": "imagegpt", "size": 8, "pretrain_on": "digits", "pretrain_stop": 1000}
    path = write_bench(
        tmp_path, models={"igpt": model}, datasets={"digits": {"plugin": "digits", "start": 900, "stop": 1600}},
        metrics={"rec": {"plugin": "recognisability", "start": 1500}},
    )  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_benchmark(path, load_plugins(PluginOptions()).registry)
    text = str(err.value)
    assert "datasets.digits: reads digits images 900…1599, which overlap models.igpt's 0…999" in text
    assert "metrics.rec: reads digits images 1500…, which overlap datasets.digits's 900…1599" in text
    fine = write_bench(
        tmp_path, models={"igpt": model}, datasets={"digits": {"plugin": "digits", "start": 1000, "stop": 1500}},
        metrics={"rec": {"plugin": "recognisability", "start": 1500}},
    )  # fmt: skip
    load_benchmark(fine, load_plugins(PluginOptions()).registry)
