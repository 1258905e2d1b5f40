"""The ImageGPT loader and its colour-cluster codec: image → tokens → image, SOS, palette, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imagekit import igpt, tiny_loader  # noqa: F401  (igpt: a fixture)

from harness.api import Document, ImagePayload, LoadContext
from harness.errors import InputError

GREYS = np.array([0, 85, 170, 255], dtype=np.uint8)  # the 4-level palette, exactly


def test_round_trip_is_exact_for_palette_colours(igpt):
    codec = igpt.codec
    rng = np.random.default_rng(0)
    pixels = GREYS[rng.integers(0, 4, size=(8, 8))]
    ids = codec.encode_image(ImagePayload.from_array(pixels))
    assert ids[0] == codec.sos_token_id == 4 == igpt.module.config.vocab_size - 1
    assert len(ids) == 1 + 64 and set(ids[1:]) <= {0, 1, 2, 3}
    back = codec.to_image(ids).to_array()
    assert back.shape == (8, 8, 3)
    assert (back[:, :, 0] == pixels).all() and (back[:, :, 1] == pixels).all()
    assert codec.encode_image(ImagePayload.from_array(np.stack([pixels] * 3, axis=2))) == ids  # RGB grey = grey


def test_codec_quantises_to_the_nearest_colour_and_resizes(igpt):
    codec = igpt.codec
    ids = codec.encode_image(ImagePayload.from_array(np.full((4, 4), 100)))  # resized 4×4 → 8×8; 100 is nearest 85
    assert ids[1:] == [1] * 64
    assert codec.palette[1] == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_decode_is_readable_text_and_text_is_refused(igpt):
    codec = igpt.codec
    assert codec.decode([4, 0, 3, 2]) == "0 3 2"
    with pytest.raises(InputError, match="encodes images, not text"):
        codec.encode("hello")
    with pytest.raises(InputError, match="has no image"):
        codec.encode_document(Document("d", "just text"))


def test_loader_switches_dropout_off_and_sizes_the_head(igpt):
    config = igpt.module.config
    assert (config.embd_pdrop, config.resid_pdrop, config.attn_pdrop) == (0.0, 0.0, 0.0)
    assert igpt.module.lm_head.out_features == 4  # never predicts SOS
    assert config.n_positions == 65  # SOS + every pixel: whole images train in one window
    assert igpt.modality == "image" and igpt.codec.modality == "image"


def test_random_init_is_seeded_and_weights_round_trip(tmp_path: Path, igpt):
    import torch

    again = tiny_loader().load(LoadContext("cpu", tmp_path))
    for a, b in zip(igpt.module.parameters(), again.module.parameters()):
        assert torch.equal(a, b)
    other = tiny_loader(init_seed=1).load(LoadContext("cpu", tmp_path))
    assert not torch.equal(next(other.module.parameters()), next(igpt.module.parameters()))
    igpt.save_weights(tmp_path / "w")
    other.load_weights(tmp_path / "w")
    assert torch.equal(next(other.module.parameters()), next(igpt.module.parameters()))


def test_load_codec_needs_no_weights(tmp_path: Path):
    codec = tiny_loader(size=6, levels=3).load_codec(LoadContext("cpu", tmp_path))
    assert (codec.height, codec.width, codec.sos_token_id, len(codec.palette)) == (6, 6, 3, 3)
    assert codec.fingerprint() != tiny_loader(size=6, levels=4).load_codec(LoadContext("cpu", tmp_path)).fingerprint()


def test_missing_local_checkpoint_is_one_clear_error(tmp_path: Path):
    from harness_plugins.models.imagegpt import ImageGPT

    with pytest.raises(InputError, match="no such directory"):
        ImageGPT({"id": str(tmp_path / "nope")}).load(LoadContext("cpu", tmp_path))


def test_local_checkpoint_directory_loads(tmp_path: Path, igpt):
    """A saved ImageGPT (config, weights, preprocessor) loads by path with the same codec and weights."""
    import torch
    from harness_plugins.models.imagegpt import ImageGPT

    folder = tmp_path / "ckpt"
    igpt.module.save_pretrained(folder)
    igpt.codec.processor.save_pretrained(folder)
    handle = ImageGPT({"id": str(folder), "dtype": "float32"}).load(LoadContext("cpu", tmp_path))
    assert handle.codec.fingerprint() == igpt.codec.fingerprint()
    assert torch.equal(next(handle.module.parameters()), next(igpt.module.parameters()))
    assert handle.module.config.resid_pdrop == 0.0


def test_offline_pretraining_runs_once_and_is_cached(tmp_path: Path, capsys):
    import torch

    params = {"pretrain_on": "digits", "pretrain_stop": 32, "pretrain_epochs": 1, "pretrain_batch_size": 16}
    first = tiny_loader(size=4, **params).load(LoadContext("cpu", tmp_path))
    assert "pretraining imagegpt on digits[0:32] (32 images): update 2/2" in capsys.readouterr().err
    folders = list((tmp_path / "imagegpt-pretrained").iterdir())
    assert len(folders) == 1 and (folders[0] / "pretraining.json").is_file()
    again = tiny_loader(size=4, **params).load(LoadContext("cpu", tmp_path))
    assert capsys.readouterr().err == ""  # loaded from the cache
    for a, b in zip(first.module.parameters(), again.module.parameters()):
        assert torch.equal(a, b)
    plain = tiny_loader(size=4).load(LoadContext("cpu", tmp_path))
    assert not torch.equal(next(plain.module.parameters()), next(first.module.parameters()))
    assert tiny_loader(size=4, **params).fingerprint() != tiny_loader(size=4, **(params | {"pretrain_epochs": 2})).fingerprint()
