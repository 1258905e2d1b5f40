"""The report in a real browser: Debian's chromium, headless, driven by selenium through /usr/bin/chromedriver.

Skipped (with the reason) where selenium, chromium or chromedriver is missing; ``.ci/run`` installs them.
Selenium is pointed at the system browser and driver, so it never downloads either.

Also the maker of ``docs/report-quickstart.png``:
``.venv/bin/python tests/report/test_report_browser.py --screenshot docs/report-quickstart.png``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_helpers import (  # noqa: E402
    QUICKSTART,
    QUICKSTART_IMAGE,
    REPEAT,
    WordCodec,
    copy_results,
    plant_text_record,
    read_records,
    synthetic_results,
    train_gram,
    write_records,
)

from harness.report import write_report  # noqa: E402
from harness.report_data import TrainingGrams  # noqa: E402

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HARNESS_CHROMEDRIVER", "/usr/bin/chromedriver")


def start_browser(width: int = 1400, height: int = 1000) -> Any:
    """A headless chromium, or pytest.skip saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            pytest.skip(f"{path} not found (apt-get install {package})")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager: never fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--allow-file-access-from-files"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start here is an environment problem
        pytest.skip(f"chromium did not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_browser()
    yield driver
    driver.quit()


def open_report(driver: Any, path: Path, timeout: float = 60) -> float:
    """Load a report from file:// and wait for the sample browser; returns ms from navigation to ready."""
    driver.get(path.resolve().as_uri())
    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.body && document.body.getAttribute('data-ready')") != "1":
        if time.monotonic() > deadline:
            raise AssertionError("the report did not become ready")
        time.sleep(0.05)
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors
    return float(driver.execute_script("return window.reportReadyMs || 0"))


def choose(driver: Any, select_id: str, *, value: str | None = None, index: int | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    menu = Select(driver.find_element(By.ID, select_id))
    if value is not None:
        menu.select_by_value(value)
    else:
        menu.select_by_index(index)


def runs(segments: list[list[str]], mark: str) -> list[str]:
    """The texts of maximal runs of adjacent painted pieces that carry ``mark`` (other marks split pieces)."""
    out: list[str] = []
    inside = False
    for text, classes in segments:
        if mark in classes.split():
            if inside:
                out[-1] += text
            else:
                out.append(text)
            inside = True
        else:
            inside = False
    return out


def cards(driver: Any) -> list[dict[str, Any]]:
    """Each shown card: its cell, text, highlighted runs and per-step strip classes."""
    shown = driver.execute_script("""
        return Array.from(document.querySelectorAll('#s-grid .card')).map(function (c) {
          var text = c.querySelector('.text');
          return {cell: c.getAttribute('data-cell'), text: text.textContent,
                  segments: Array.from(text.childNodes).map(function (n) {
                    return [n.textContent, n.nodeType === 1 ? n.className : ""]; }),
                  badges: c.querySelector('.badges').textContent,
                  strip: Array.from(c.querySelectorAll('.strip span')).map(function (s) { return s.className; })};
        });""")
    for card in shown:
        card["rep"] = runs(card["segments"], "rep")
        card["copy"] = runs(card["segments"], "copy")
    return shown


@pytest.fixture
def quickstart_report(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    results = copy_results(QUICKSTART, tmp_path / "quickstart")
    planted = plant_text_record(results, "smollm2__hyperfit__greedy", copy_at=50)
    return write_report(results).path, planted


def test_clicking_a_header_sorts_the_table(browser: Any, quickstart_report: tuple[Path, dict]):
    from selenium.webdriver.common.by import By

    open_report(browser, quickstart_report[0])
    table = browser.find_elements(By.CSS_SELECTOR, "table.board")[0]
    header = next(th for th in table.find_elements(By.CSS_SELECTOR, "th") if th.text.startswith("self-bleu"))
    column = int(header.get_attribute("data-col"))

    def values() -> list[float]:
        return [float(row.find_elements(By.TAG_NAME, "td")[column].get_attribute("data-sort"))
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # fmt: skip

    before = values()
    assert before != sorted(before)  # the run's order is not already sorted
    header.click()
    assert header.get_attribute("aria-sort") == "ascending" and values() == sorted(before)
    header.click()
    assert header.get_attribute("aria-sort") == "descending" and values() == sorted(before, reverse=True)
    model = next(th for th in table.find_elements(By.CSS_SELECTOR, "th") if th.text.startswith("decoder"))
    model.click()
    decoders = [row.find_elements(By.TAG_NAME, "td")[2].text for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert decoders == sorted(decoders)


def test_choosing_a_context_shows_every_cells_continuation(browser: Any, quickstart_report: tuple[Path, dict]):
    path, _ = quickstart_report
    open_report(browser, path)
    results = path.parent
    cells = sorted(p.name for p in (results / "cells").iterdir())
    by_cell = {cell: read_records(results / "cells" / cell / "generations.jsonl") for cell in cells}
    news = [r["prompt_id"] for r in by_cell[cells[0]] if r["dataset"] == "news"]
    choose(browser, "s-dataset", value="news")
    choose(browser, "s-context", index=5)
    shown = cards(browser)
    assert [c["cell"] for c in shown][0] == "reference"
    assert sorted(c["cell"] for c in shown[1:]) == cells
    for card in shown[1:]:
        record = next(r for r in by_cell[card["cell"]] if r["prompt_id"] == news[5])
        assert card["text"] == record["output_text"]
        assert len(card["strip"]) == len(record["step_entropy"])
    reference = next(r for r in by_cell[cells[0]] if r["prompt_id"] == news[5])["reference_text"]
    assert shown[0]["text"] == reference
    context = browser.execute_script("return document.getElementById('s-context-text').textContent")
    assert news[5] in context


def test_planted_repeat_and_copied_span_are_highlighted(browser: Any, quickstart_report: tuple[Path, dict]):
    path, planted = quickstart_report
    open_report(browser, path)
    choose(browser, "s-dataset", value=planted["dataset"])
    choose(browser, "s-context", index=0)
    card = next(c for c in cards(browser) if c["cell"] == "smollm2__hyperfit__greedy")
    assert card["text"] == planted["output_text"]  # the planted markup shows as text
    assert card["rep"] == [REPEAT, REPEAT]  # the 4-gram occurring twice, both occurrences
    copied = [i for i, cls in enumerate(card["strip"]) if "copy" in cls.split()]
    assert copied == list(range(50, 58))  # the training 8-gram planted at token 50
    assert "8 tokens copied from training" in card["badges"]
    browser.execute_script("var n = document.getElementById('s-n'); n.value = '5'; n.dispatchEvent(new Event('input'));")
    card = next(c for c in cards(browser) if c["cell"] == "smollm2__hyperfit__greedy")
    assert card["rep"] == []  # no 5-gram repeats: n is the page's to choose


def test_image_copies_are_painted_in_the_text_and_blocked_steps_marked(browser: Any, tmp_path: Path):
    results = copy_results(QUICKSTART_IMAGE, tmp_path / "image")
    cell = "igpt__hyperfit__greedy"
    path = results / "cells" / cell / "generations.jsonl"
    records = read_records(path)
    gram = train_gram(results, "igpt__hyperfit", n=8, start=20)
    records[0]["output_ids"][30:38] = gram
    records[0]["output_text"] = " ".join(str(i) for i in records[0]["output_ids"])
    write_records(path, records)
    blocked = results / "cells" / "igpt__hyperfit__blocked" / "generations.jsonl"
    rows = read_records(blocked)
    rows[0]["blocked_steps"] = [3, 4]  # a decoder may also list the steps it blocked
    write_records(blocked, rows)
    open_report(browser, write_report(results).path)
    shown = {c["cell"]: c for c in cards(browser)}
    ids = records[0]["output_ids"]
    train = TrainingGrams.from_sequences([r["token_ids"] for r in read_records(results / "recipes" / "igpt__hyperfit" / "train_samples.jsonl")], 8)
    spans = train.copied_spans(ids)
    assert any(a <= 30 and 38 <= b for a, b in spans)
    assert shown[cell]["copy"] == [" ".join(str(i) for i in ids[a:b]) for a, b in spans]
    assert [i for i, cls in enumerate(shown["igpt__hyperfit__blocked"]["strip"]) if "blk" in cls.split()] == [3, 4]
    assert "2 blocked steps" in shown["igpt__hyperfit__blocked"]["badges"]
    choose(browser, "s-context", index=1)
    assert "blocked steps" in {c["cell"]: c for c in cards(browser)}["igpt__hyperfit__blocked"]["badges"]


def test_a_report_of_10000_continuations_loads_fast(browser: Any, tmp_path: Path):
    results = synthetic_results(tmp_path / "big")
    started = time.perf_counter()
    outcome = write_report(results, codec_for=lambda model: WordCodec())
    build = time.perf_counter() - started
    ready_ms = open_report(browser, outcome.path)
    timing = browser.execute_script(
        "var t = performance.getEntriesByType('navigation')[0]; return [t.domContentLoadedEventEnd, t.loadEventEnd];"
    )
    switch = browser.execute_script("""
        var sel = document.getElementById('s-context'), t0 = performance.now();
        sel.value = String(sel.options.length - 1); sel.dispatchEvent(new Event('change'));
        var t1 = performance.now();
        var ds = document.getElementById('s-dataset'); ds.value = ds.options[ds.options.length - 1].value;
        ds.dispatchEvent(new Event('change'));
        return [t1 - t0, performance.now() - t1, document.querySelectorAll('#s-grid .card').length];""")
    print(f"\n10,000 continuations: report built in {build:.2f}s ({outcome.size_bytes / 1e6:.1f} MB); page ready "
          f"{ready_ms:.0f} ms after navigation (DOMContentLoaded {timing[0]:.0f} ms, load {timing[1]:.0f} ms); "
          f"showing another context {switch[0]:.0f} ms, another dataset {switch[1]:.0f} ms")
    assert switch[2] == 5  # the reference and 4 cells
    assert ready_ms < 15_000 and switch[0] < 3_000 and switch[1] < 5_000


def save_screenshot(target: Path) -> None:
    """docs/report-quickstart.png: the quickstart report's samples with a copied span on screen."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        results = copy_results(QUICKSTART, Path(tmp) / "quickstart")
        driver = start_browser(1400, 2200)
        try:
            from harness.plugin_manager import load_plugins

            # as `harness report` does: the loaders' tokenizers place copied spans in the text
            open_report(driver, write_report(results, registry=load_plugins().registry).path)
            choose(driver, "s-dataset", value="wiki")
            index = [r["prompt_id"] for r in read_records(results / "cells" / "smollm2__base__greedy" / "generations.jsonl")
                     if r["dataset"] == "wiki"].index("wiki/enwiki:Apollo 11")  # fmt: skip
            choose(driver, "s-context", index=index)
            driver.execute_script("document.getElementById('leaderboard').scrollIntoView()")
            driver.save_screenshot(str(target))
        finally:
            driver.quit()
    from PIL import Image  # a 256-colour palette keeps the committed picture small and the text sharp

    Image.open(target).convert("RGB").quantize(256).save(target, optimize=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--screenshot":
        save_screenshot(Path(sys.argv[2]))
        print(f"wrote {sys.argv[2]}")
    else:
        print(__doc__)
