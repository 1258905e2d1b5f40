"""The wiki-markup cleaner on hand-written snippets, with exact expected output."""

from __future__ import annotations

import pytest

from harness_plugins.datasets._wiki_markup import clean_wikitext, resolve_links, strip_templates_and_tables

CASES = [
    pytest.param("A {{outer|x={{inner|y}}|z}} B", "A B", id="nested-template"),
    pytest.param(
        "{{Infobox person\n| name = X\n| born = {{birth date|1900|1|1}}\n}}\n"
        "'''Ada''' was a [[mathematician|mathematical]] [[genius]].",
        "Ada was a mathematical genius.",
        id="infobox-bold-piped-links",
    ),
    pytest.param(
        'Rock<ref>Cite {{cite web|url=x}}</ref> and<ref name="a"/> roll.<ref name=b>x\ny</ref>',
        "Rock and roll.",
        id="refs",
    ),
    pytest.param(
        'Intro.\n{| class="wikitable"\n|-\n! H1 !! H2\n|-\n| a || {{flag|X}}\n|}\nAfter.',
        "Intro.\nAfter.",
        id="table",
    ),
    pytest.param(
        "[[File:Foo.jpg|thumb|left|A [[cat]] on a [[mat|rug]] in 1927 [above]]]Text [[Category:Cats]] here. "
        "[[Image:x.png]]",
        "Text here.",
        id="file-image-category-links",
    ),
    pytest.param("It is ''very'' '''bold''' and '''''both'''''.", "It is very bold and both.", id="bold-italic"),
    pytest.param(
        "== History ==\nOld.\n=== Early ===\nEarly.\n== References ==\n* ref one\n=== Sub ===\n* more\n== After ==\nKept.",
        "Old.\nEarly.\nKept.",
        id="headings-and-back-matter",
    ),
    pytest.param("See [http://example.com the site] or [http://bare.example].", "See the site or.", id="external-links"),
    pytest.param("* item one\n# item two\n: indented\n", "item one\nitem two\nindented", id="list-markers"),
    pytest.param(
        "It is {{convert|5|km|mi}} long and {{convert|10|-|20|C}} warm; name {{lang|fr|Le Monde}}.",
        "It is 5 km long and 10\u201320 \u00b0C warm; name Le Monde.",
        id="inline-templates-kept",
    ),
    pytest.param('x <!-- hidden --> y<br/>z <span style="a">span</span> &amp; a&nbsp;b', "x y z span & a b", id="html"),
    pytest.param("Broken {{unclosed template and [[link text]] continues.", "Broken unclosed template and link text continues.", id="unbalanced"),
    pytest.param("[[Foo (band)|]] and [[de:Anarchismus]] and [[:Category:Cats|cats]].", "Foo and and cats.", id="pipe-trick-interlanguage"),
    pytest.param("Born ({{IPAc-en|x}}; 1 May 1900) here.\n\n\n}}\n|}\n----\n", "Born (1 May 1900) here.", id="leftovers"),
    pytest.param("Use {{{1|default}}} here.", "Use here.", id="template-parameter"),
    pytest.param("[[trade union]]ism and [[Apple#Fruit|apples]]", "trade unionism and apples", id="link-trail"),
]


@pytest.mark.parametrize("source, expected", CASES)
def test_clean_wikitext(source: str, expected: str) -> None:
    assert clean_wikitext(source) == expected


def test_strip_templates_keeps_unmatched_closer_text() -> None:
    assert strip_templates_and_tables("a }} b {{x|{{y}}}} c") == "a }} b  c"


def test_table_opener_only_at_line_start() -> None:
    # "{|" in the middle of a line is not a table
    assert strip_templates_and_tables("set {|x|} here") == "set {|x|} here"


def test_resolve_links_innermost_first() -> None:
    assert resolve_links("[[File:a.png|thumb|[[b|c]] [http://x.org d]]] e [[f]]") == " e f"


def test_paragraphs_joined_by_newline() -> None:
    assert clean_wikitext("First para.\n\nSecond [[para]].\n") == "First para.\nSecond para."
