"""Rebuild ``harness_plugins/datasets/data/austen/*.txt.gz`` (the ``embedded-fiction`` corpus) from Debian's
``r-cran-janeaustenr`` package.

Why this route: the machines this project runs on reach only PyPI and Debian, and Debian ships Jane
Austen's six novels (Project Gutenberg texts, public domain; the R package is MIT) inside that package as an
R lazy-load database. The ``.rdx`` index is a gzip'd serialized R list of (offset, length) pairs; each
``.rdb`` entry is a 4-byte big-endian length followed by a zlib stream of one serialized character vector
(one element per printed line). The PyPI package ``rdata`` decodes those; it is needed only here, so install
it in a throwaway place, not into the project::

    python -m venv /tmp/rdata-venv && /tmp/rdata-venv/bin/pip install rdata
    /tmp/rdata-venv/bin/python scripts/extract_austen.py            # downloads the .deb with apt-get
    /tmp/rdata-venv/bin/python scripts/extract_austen.py --deb r-cran-janeaustenr_1.0.0-1_all.deb

Output format (one file per novel, gzip with a fixed header so reruns are byte-identical): front matter and
back matter dropped; a line ``CHAPTER <n>`` opens each chapter, ``n`` counting 1, 2, … through the whole
novel (volume numbering is flattened); then one paragraph per line, hard line wraps joined and runs of
whitespace collapsed to one space.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

#: Debian package name -> R object name; which novels are vendored (about 330 kB compressed for these two)
NOVELS = {"persuasion": "persuasion", "northanger-abbey": "northangerabbey"}
DATA_DIR = "usr/lib/R/site-library/janeaustenr/data/"
OUT_DIR = Path(__file__).resolve().parent.parent / "harness_plugins" / "datasets" / "data" / "austen"

_CHAPTER = re.compile(r"^\s*chapter\s+([0-9]+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
_VOLUME = re.compile(r"^\s*volume\s+([0-9]+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
#: where the novel proper ends: the closing mark, or an editor's note appended after it
_END = re.compile(r"^\s*(the end|finis|a note on the text)\s*$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def load_books(data_dir: Path) -> dict[str, list[str]]:
    """Decode every novel in ``Rdata.rdb`` (lines as printed in the Gutenberg text)."""
    try:
        import rdata
    except ImportError:
        sys.exit("this script needs the PyPI package rdata (see the module docstring)")

    def convert(raw: bytes):
        return rdata.conversion.convert(rdata.parser.parse_data(raw))

    index = convert(gzip.decompress((data_dir / "Rdata.rdx").read_bytes()))
    rdb = (data_dir / "Rdata.rdb").read_bytes()
    books = {}
    for name, (offset, length) in index["variables"].items():
        offset, length = int(offset), int(length)
        declared = int.from_bytes(rdb[offset : offset + 4], "big")
        raw = zlib.decompress(rdb[offset + 4 : offset + length])
        if declared != len(raw):
            sys.exit(f"{name}: rdb entry says {declared} bytes, zlib stream gave {len(raw)}")
        books[str(name)] = [str(line) for line in convert(raw)]
    return books


def chapters(lines: list[str]) -> list[list[str]]:
    """Split a novel's lines into chapters of normalised paragraphs, dropping front and back matter."""
    out: list[list[str]] = []
    para: list[str] = []

    def flush() -> None:
        if para and out:
            out[-1].append(_SPACE.sub(" ", " ".join(para)).strip())
        para.clear()

    for line in lines:
        if _END.match(line):
            break
        if _CHAPTER.match(line):
            flush()
            out.append([])
        elif _VOLUME.match(line) or not line.strip():
            flush()
        else:
            para.append(line)
    flush()
    return [chapter for chapter in out if chapter]


def render(chapter_list: list[list[str]]) -> str:
    parts = []
    for number, paragraphs in enumerate(chapter_list, start=1):
        parts.append(f"CHAPTER {number}")
        parts.extend(paragraphs)
    return "\n".join(parts) + "\n"


def write_gzip(path: Path, text: str) -> None:
    """Deterministic gzip: no file name, mtime 0, maximum compression."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as fh:
        fh.write(text.encode("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deb", type=Path, help="r-cran-janeaustenr .deb (default: apt-get download it)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        deb = args.deb
        if deb is None:
            subprocess.run(["apt-get", "download", "r-cran-janeaustenr"], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("r-cran-janeaustenr_*.deb"))
        print(f"{deb.name}: sha256 {hashlib.sha256(deb.read_bytes()).hexdigest()}")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        books = load_books(Path(tmp) / "x" / DATA_DIR)
    args.out.mkdir(parents=True, exist_ok=True)
    for key, r_name in NOVELS.items():
        chapter_list = chapters(books[r_name])
        path = args.out / f"{key}.txt.gz"
        write_gzip(path, render(chapter_list))
        words = sum(len(p.split()) for c in chapter_list for p in c)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}: {len(chapter_list)} chapters, {words} words, {path.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
