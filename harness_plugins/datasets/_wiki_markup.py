"""Turn MediaWiki markup into plain prose (a small, dependency-free cleaner written for this harness).

What :func:`clean_wikitext` does, in order:

1. drops HTML comments, ``<ref>…</ref>`` and ``<ref …/>``, and the content of tags whose content is not
   prose (``<math>``, ``<gallery>``, ``<timeline>``, ``<score>``, ``<syntaxhighlight>``, ``<source>``,
   ``<imagemap>``, ``<references>``, ``<nowiki>`` is kept as text);
2. drops templates ``{{…}}`` (nested to any depth, template parameters ``{{{…}}}`` too) and tables
   ``{|…|}`` (opened and closed at the start of a line), including everything inside them; a few
   inline templates that carry running text are rendered instead: ``{{convert|5|km|mi}}`` → ``5 km``,
   ``{{lang|fr|Le Monde}}`` / ``{{lang-fa|…}}`` / ``{{transl|…}}`` / ``{{nowrap|…}}`` → their text,
   ``{{nihongo|English|…}}`` → ``English``, ``{{ndash}}`` → ``–``;
3. resolves links from the innermost outwards: ``[[a|b]]`` → ``b``, ``[[a]]`` → ``a``, ``[[a (x)|]]`` → ``a``;
   ``[[File:…]]``, ``[[Image:…]]``, ``[[Media:…]]``, ``[[Category:…]]`` and interlanguage links
   (``[[de:…]]``) are dropped with their captions; external links ``[url text]`` → ``text`` and
   ``[url]`` → nothing;
4. strips the remaining HTML tags (keeping their text), bold/italic quote runs (``''``, ``'''``,
   ``'''''``), behaviour switches (``__TOC__``) and decodes HTML entities (``&nbsp;`` → space);
5. works line by line: **section headings** (``== X ==``) **are dropped**, and so is the whole body of
   back-matter sections (References, Notes, See also, External links, Further reading, Bibliography,
   Sources, Footnotes, Citations) up to the next heading of the same or a higher level; list markers
   (``*``, ``#``, ``:``, ``;``) are removed and the item text kept; table-row leftovers (lines starting
   with ``|`` or ``!``) and lines without a single letter or digit are dropped; whitespace is collapsed,
   spaces before punctuation and empty brackets left by removed templates are removed.

The result is one paragraph per line, joined with ``"\\n"``. Unbalanced markup never swallows the rest
of an article: an opener (``{{``, ``{|``, ``[[``) without a matching closer is deleted and the text after
it kept.
"""

from __future__ import annotations

import html
import re

__all__ = ["clean_wikitext", "strip_templates_and_tables", "resolve_links"]

# --------------------------------------------------------------------------- tags and comments

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_REF_SELF_CLOSING = re.compile(r"<ref\b[^<>]*/\s*>", re.I)
_REF_PAIRED = re.compile(r"<ref\b[^<>]*>.*?(?:</ref\s*>|\Z)", re.I | re.S)
_DROP_CONTENT_TAGS = ("math", "gallery", "timeline", "score", "syntaxhighlight", "source", "imagemap", "references", "chem", "hiero", "graph", "mapframe")
_DROP_CONTENT = re.compile(
    r"<(%s)\b[^<>]*?(?:/\s*>|>.*?</\1\s*>)" % "|".join(_DROP_CONTENT_TAGS),
    re.I | re.S,
)
_BR = re.compile(r"<br\s*/?\s*>", re.I)
_ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_STRAY_CLOSING_REF = re.compile(r"</ref\s*>", re.I)

# --------------------------------------------------------------------------- links

#: a link with no nested link inside; single brackets are allowed in captions ("1927 [above]")
_INNER_LINK = re.compile(r"\[\[((?:[^\[\]]|\[(?!\[)[^\[\]]*\])*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:|ftps:|news:|mailto:|irc:|//)[^\s\[\]]*(?:\s+([^\[\]]*))?\]", re.I)
_DROP_LINK_NAMESPACES = ("file", "image", "media", "category")
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")
_PARENTHETICAL = re.compile(r"\s*\([^()]*\)\s*$")

# --------------------------------------------------------------------------- lines

_HEADING = re.compile(r"^(={1,6})\s*(.*?)\s*\1\s*$")
_BACK_MATTER = {
    "references", "notes", "see also", "external links", "further reading", "bibliography",
    "sources", "footnotes", "citations", "notes and references", "references and notes",
    "other reading", "external link", "literature", "works cited",
}
_QUOTES = re.compile(r"'{2,}")
_SWITCH = re.compile(r"__[A-Z]+__")
_LIST_MARKER = re.compile(r"^[*#:;]+\s*")
_SPACE = re.compile(r"[ \t\u00a0\u2009\u200a\u202f\u3000]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[]) +")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;:]?\s*\)|\[\s*\]")
_DOUBLED_PUNCT = re.compile(r"([,;])\s*(?=[,;.])")
_OPEN_THEN_PUNCT = re.compile(r"\(\s*[,;:]\s*")
_HAS_WORD = re.compile(r"\w")


def strip_templates_and_tables(text: str) -> str:
    """Remove ``{{templates}}``, ``{{{params}}}`` and ``{| tables |}``, nested to any depth.

    A closer without an opener is kept as text; an opener that is never closed is deleted (just its
    two characters) and the scan goes on after it, so broken markup cannot eat the rest of the text.
    """
    out: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = _find_opener(text, pos)
        if start < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:start])
        end = _match_construct(text, start)
        if end < 0:  # never closed: drop the opener marker only
            opener_len = 3 if text.startswith("{{{", start) else 2
            pos = start + opener_len
        else:
            if text.startswith("{{", start) and not text.startswith("{{{", start):
                out.append(_render_inline_template(text[start + 2 : end - 2]))
            pos = end
    return "".join(out)


# --------------------------------------------------------------------------- inline templates kept as text

_TEMPLATE_NAME = re.compile(r"^\s*([^|{}\[\]<>\n]*?)\s*(?:\||$)", re.S)
_NUMBER = re.compile(r"^[-+\u2212]?[\d.,]+$")
_RANGE_WORDS = {"-", "\u2013", "to", "and", "or", "by", "x", "\u00d7", "to(-)", "and(-)", "+/-", "\u00b1"}
_UNIT_NAMES = {"C": "\u00b0C", "F": "\u00b0F", "K": "K"}
#: templates whose last positional argument is the visible text
_LAST_ARG_TEMPLATES = {"lang", "transl", "transliteration", "nowrap", "small", "nq", "big", "smaller", "larger", "em", "strong", "abbr"}
#: templates whose first positional argument is the visible text
_FIRST_ARG_TEMPLATES = {"nihongo", "nihongo2", "nobold", "noitalic", "sic", "ill", "interlanguage link", "lang-rtl", "vanchor", "visible anchor"}
_LITERAL_TEMPLATES = {"'": "'", "''": "''", "ndash": "\u2013", "mdash": "\u2014", "spaced ndash": " \u2013 ", "snd": " \u2013 ", "spnd": " \u2013 ", "nbsp": " ", "-": "", "!": "|", "=": "="}


def _split_args(body: str) -> list[str]:
    """Split a template body at top-level ``|`` (not inside ``[[…]]`` or nested ``{{…}}``)."""
    parts: list[str] = []
    depth_link = depth_tpl = 0
    current: list[str] = []
    i = 0
    while i < len(body):
        two = body[i : i + 2]
        if two == "[[":
            depth_link += 1
        elif two == "]]" and depth_link:
            depth_link -= 1
        elif two == "{{":
            depth_tpl += 1
        elif two == "}}" and depth_tpl:
            depth_tpl -= 1
        if two in ("[[", "]]", "{{", "}}"):
            current.append(two)
            i += 2
            continue
        if body[i] == "|" and not depth_link and not depth_tpl:
            parts.append("".join(current))
            current = []
        else:
            current.append(body[i])
        i += 1
    parts.append("".join(current))
    return parts


def _render_convert(args: list[str]) -> str:
    if not args or not _NUMBER.match(args[0].strip()):
        return ""
    out = [args[0].strip()]
    i = 1
    while i + 1 < len(args) and args[i].strip() in _RANGE_WORDS:
        word = args[i].strip().replace("(-)", "")
        if word in ("-", "\u2013"):
            out[-1] = out[-1] + "\u2013" + args[i + 1].strip()
        else:
            out += [word, args[i + 1].strip()]
        i += 2
    if i < len(args) and not _NUMBER.match(args[i].strip()):
        out.append(_UNIT_NAMES.get(args[i].strip(), args[i].strip()))
        i += 1
        while i + 1 < len(args) and _NUMBER.match(args[i].strip()) and not _NUMBER.match(args[i + 1].strip()):
            out += [args[i].strip(), _UNIT_NAMES.get(args[i + 1].strip(), args[i + 1].strip())]
            i += 2
    return " ".join(out)


def _render_inline_template(body: str) -> str:
    """Visible text of a few common inline templates (convert, lang, transl, nowrap, …); "" otherwise."""
    m = _TEMPLATE_NAME.match(body)
    if not m:
        return ""
    name = m.group(1).strip().replace("_", " ").lower()
    if name in _LITERAL_TEMPLATES:
        return _LITERAL_TEMPLATES[name]
    family = "lang" if name.startswith("lang-") and name != "lang-rtl" else name
    if family not in _LAST_ARG_TEMPLATES and family not in _FIRST_ARG_TEMPLATES and family not in ("convert", "cvt"):
        return ""
    inner = strip_templates_and_tables(body)  # nested templates: render or drop them first
    args = [a for a in _split_args(inner)[1:] if "=" not in a.split("[[", 1)[0]]
    args = [a for a in args if a.strip()]
    if family in ("convert", "cvt"):
        return _render_convert(args)
    if not args:
        return ""
    if family == "lang" and name == "lang":
        args = args[1:]  # {{lang|code|text}}
    if not args:
        return ""
    return (args[0] if family in _FIRST_ARG_TEMPLATES else args[-1]).strip()


def _at_line_start(text: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and text[j] in " \t":
        j -= 1
    return j < 0 or text[j] == "\n"


def _find_opener(text: str, pos: int) -> int:
    """Index of the next ``{{`` or line-initial ``{|`` at or after ``pos``; -1 if none."""
    while True:
        i = text.find("{", pos)
        if i < 0 or i + 1 >= len(text):
            return -1
        nxt = text[i + 1]
        if nxt == "{" or (nxt == "|" and _at_line_start(text, i)):
            return i
        pos = i + 1


def _match_construct(text: str, start: int) -> int:
    """Given an opener at ``start``, return the index just past its matching closer, or -1."""
    stack: list[str] = []
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "{":
            if text.startswith("{{{", i) and not text.startswith("{{{{", i):
                stack.append("param")
                i += 3
                continue
            if text.startswith("{{", i):
                stack.append("template")
                i += 2
                continue
            if text.startswith("{|", i) and _at_line_start(text, i):
                stack.append("table")
                i += 2
                continue
        elif c == "}":
            if stack and stack[-1] == "param" and text.startswith("}}}", i):
                stack.pop()
                i += 3
                if not stack:
                    return i
                continue
            if text.startswith("}}", i) and stack and stack[-1] in ("template", "param"):
                if stack[-1] == "param":  # "{{{x}}" is really a template closing around a brace
                    stack.pop()
                    stack.append("template")
                stack.pop()
                i += 2
                if not stack:
                    return i
                continue
        elif c == "|" and text.startswith("|}", i) and "table" in stack and _at_line_start(text, i):
            while stack and stack.pop() != "table":
                pass
            i += 2
            if not stack:
                return i
            continue
        i += 1
    return -1


def _link_text(inner: str) -> str:
    """Display text of one ``[[…]]`` link without nested brackets, or "" when the link is dropped."""
    target, sep, label = inner.partition("|")
    stripped = target.strip()
    leading_colon = stripped.startswith(":")
    bare = stripped.lstrip(":").strip()
    prefix, colon, _rest = bare.partition(":")
    prefix_l = prefix.strip().lower()
    if colon and not leading_colon:
        if prefix_l in _DROP_LINK_NAMESPACES:
            return ""
        if _INTERLANGUAGE.match(prefix_l) and prefix.strip() == prefix_l:
            return ""
    if colon and leading_colon and prefix_l in ("file", "image", "media") and not sep:
        return ""
    if sep:
        label = label.strip()
        if label:
            return label
        # pipe trick: [[Foo (bar)|]] shows "Foo", [[ns:Foo|]] shows "Foo"
        shown = _rest if colon else bare
        return _PARENTHETICAL.sub("", shown).strip()
    return bare


def resolve_links(text: str) -> str:
    """Replace wiki links and external links by their display text, innermost first."""
    while True:
        new = _INNER_LINK.sub(lambda m: _link_text(m.group(1)), text)
        new = _EXTERNAL_LINK.sub(lambda m: (m.group(1) or "").strip(), new)
        if new == text:
            break
        text = new
    # leftovers of unbalanced links: drop the markers, keep the text
    return text.replace("[[", "").replace("]]", "")


def _clean_line(line: str) -> str:
    line = _LIST_MARKER.sub("", line.strip())
    line = _SPACE.sub(" ", line).strip()
    for _ in range(2):
        line = _EMPTY_BRACKETS.sub("", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", line)
        line = _SPACE_AFTER_OPEN.sub(r"\1", line)
        line = _DOUBLED_PUNCT.sub("", line)
        line = _OPEN_THEN_PUNCT.sub("(", line)
        line = _SPACE.sub(" ", line).strip()
    return line


def _is_leftover(line: str) -> bool:
    if not line:
        return True
    if line[0] in "|!" or line.startswith("{|") or line.startswith("}}"):
        return True
    return _HAS_WORD.search(line) is None


def clean_wikitext(text: str) -> str:
    """Return the plain prose of one article's wikitext: paragraphs joined with ``"\\n"``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _COMMENT.sub("", text)
    text = _REF_SELF_CLOSING.sub("", text)
    text = _REF_PAIRED.sub("", text)
    text = _STRAY_CLOSING_REF.sub("", text)
    text = _DROP_CONTENT.sub("", text)
    text = strip_templates_and_tables(text)
    text = resolve_links(text)
    text = _BR.sub(" ", text)
    text = _ANY_TAG.sub("", text)
    text = _SWITCH.sub("", text)

    paragraphs: list[str] = []
    skip_level = 0  # >0 while inside a back-matter section of that heading level
    for raw in text.split("\n"):
        heading = _HEADING.match(raw.strip())
        if heading:
            level = len(heading.group(1))
            title = _QUOTES.sub("", heading.group(2)).strip().lower()
            if skip_level and level > skip_level:
                continue
            skip_level = level if title in _BACK_MATTER else 0
            continue
        if skip_level:
            continue
        if raw.lstrip()[:1] in ("|", "!"):
            continue
        line = _QUOTES.sub("", raw)
        line = html.unescape(line)
        line = _clean_line(line)
        if not _is_leftover(line):
            paragraphs.append(line)
    return "\n".join(paragraphs)
