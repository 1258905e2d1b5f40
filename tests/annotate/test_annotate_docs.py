"""docs/annotation.md quotes the human metrics' pinned definitions verbatim, with their params; it is linked."""

from __future__ import annotations

from pathlib import Path

from harness_plugins.metrics.human_preference import HumanAgreement, HumanPreference

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "annotation.md"


def test_every_human_metric_has_its_definition_and_params():
    text = DOC.read_text(encoding="utf-8")
    for cls in (HumanPreference, HumanAgreement):
        assert f"\n## `{cls.name}`\n" in text, cls.name
        section = text.split(f"\n## `{cls.name}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"> {cls.definition}\n" in section, f"{cls.name}: definition differs from the code"
        assert cls.description in section, f"{cls.name}: description differs from the code"
        for param in cls.params:
            default = repr(param.default) if param.default is not None else "None"
            assert f"- `{param.name}` ({param.type_name()}, default {default})" in section, (cls.name, param.name)
            assert param.help in section, (cls.name, param.name)


def test_the_page_is_linked_from_the_metrics_page_and_the_readme():
    assert "(annotation.md)" in (ROOT / "docs" / "metrics-model.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "harness annotate RESULTS_DIR --a CELL --b CELL" in readme and "docs/annotation.md" in readme
