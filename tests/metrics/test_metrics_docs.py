"""docs/metrics.md quotes every bundled metric's pinned definition verbatim, with its params."""

from __future__ import annotations

from pathlib import Path

from harness_plugins.metrics import METRICS as ALL
from harness_plugins.metrics.image import METRICS as IMAGE
from harness_plugins.metrics.model_based import METRICS as MODEL_BASED

# model-based metrics are documented in docs/metrics-model.md, image metrics in docs/images.md
#: the human-judgement metrics are pinned in docs/annotation.md (tests/annotate/test_annotate_docs.py checks it)
HUMAN = {"human-preference", "human-agreement"}
METRICS = [cls for cls in ALL if cls not in MODEL_BASED and cls not in IMAGE and cls.name not in HUMAN]

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
IMAGE_DOC = DOC.parent / "images.md"


def test_every_image_metric_is_defined_in_the_images_page():
    text = IMAGE_DOC.read_text(encoding="utf-8")
    for cls in IMAGE:
        assert f"| `{cls.name}`" in text, cls.name
        assert cls.__doc__ or cls.definition, cls.name


def test_every_metric_has_a_section_with_its_definition_and_params():
    text = DOC.read_text(encoding="utf-8")
    for cls in METRICS:
        assert f"\n## `{cls.name}`\n" in text, cls.name
        section = text.split(f"\n## `{cls.name}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"> {cls.definition}\n" in section, f"{cls.name}: definition differs from the code"
        assert cls.description in section, f"{cls.name}: description differs from the code"
        for param in cls.params:
            assert f"- `{param.name}` (" in section, (cls.name, param.name)
