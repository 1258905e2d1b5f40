"""The page in a real browser (Debian's headless chromium via selenium): five judgements by keyboard, a
server restart, resume at the next item, and a file the metric reproduces. Skipped without the browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotate_helpers import TIME, HIGH, expected_outcome, lines, make_results, serving

from harness.annotate import REFERENCE, Session, text_sha256
from harness.store import read_jsonl
from harness_plugins.metrics.human_preference import HumanPreference

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.common.exceptions import WebDriverException

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium / chromedriver are not installed (apt-get install chromium chromium-driver)")
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager look for a browser to download
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    except WebDriverException as exc:
        pytest.skip(f"chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, judged: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def settled(d):
        body = d.find_element("tag name", "body")
        return body.get_attribute("data-state") in ("ready", "done") and body.get_attribute("data-judged") == str(judged)

    WebDriverWait(driver, 15).until(settled)


def _shown(driver) -> tuple[str, str, str]:
    find = driver.find_element
    return find("tag name", "body").get_attribute("data-item"), find("id", "left").text, find("id", "right").text


def test_five_keyboard_judgements_restart_and_resume(browser, tmp_path):
    results = make_results(tmp_path)
    session = Session(results, HIGH, REFERENCE, "dana", seed=5)
    items = session.items
    keys = ["1", "b", "t", "2", "a"]  # A, B, tie, B, A: both key sets of the page
    with serving(session) as server:
        browser.get(server.url)
        _wait(browser, 0)
        hint = browser.find_element("css selector", ".hint").text
        assert all(k in hint for k in ("1", "2", "3", "a", "b", "t", "u"))
        for k, key in enumerate(keys):
            item_id, left, right = _shown(browser)
            assert item_id == items[k].id
            assert (left, right) == items[k].shown()  # as text: "<b>bold</b>" is not markup
            assert browser.find_element("id", "progress").text == f"{k} of {len(items)} judged"
            assert HIGH not in browser.page_source and REFERENCE not in browser.find_element("id", "item").text
            browser.find_element("tag name", "body").send_keys(key)
            _wait(browser, k + 1)
    assert len(session.path.read_text(encoding="utf-8").splitlines()) == 5

    again = Session(results, HIGH, REFERENCE, "dana", seed=5)  # restart: new server, new port and token
    with serving(again) as server:
        browser.get(server.url)
        _wait(browser, 5)
        assert _shown(browser)[0] == items[5].id
        assert browser.find_element("id", "progress").text == f"5 of {len(items)} judged"
        got = lines(session.path)
        assert len(got) == 5
        for event, item, key in zip(got, items, keys):
            side = {"1": "left", "a": "left", "2": "right", "b": "right", "t": "tie"}[key]
            assert event["event"] == "judgement" and event["item"] == item.id and event["side"] == side
            assert event["annotator"] == "dana" and event["seed"] == 5 and TIME.match(event["time"])
            assert event["left"] == (HIGH if item.left == "a" else REFERENCE)
            assert event["sha256"] == {"a": text_sha256(item.text_a), "b": text_sha256(item.text_b)}
        records = read_jsonl(results / "cells" / HIGH / "generations.jsonl")
        values = HumanPreference({"annotations": str(results / "annotations")}).score_samples(records)
        by_item = {e["item"]: 100.0 * (expected_outcome(e, HIGH) != "worse") for e in got}
        assert values == [by_item[r["prompt_id"]] for r in records if r["prompt_id"] in by_item]
        # undo by keyboard appends an undo line and shows the undone item again
        browser.find_element("tag name", "body").send_keys("u")
        _wait(browser, 4)
        assert _shown(browser)[0] == items[4].id
    after = lines(session.path)
    assert len(after) == 6 and after[-1]["event"] == "undo" and after[-1]["undoes"] == got[-1]["id"]
