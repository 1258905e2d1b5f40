"""The PNG grid: originals on top, one row per cell, a red line where the context ends."""

from __future__ import annotations

import io
from pathlib import Path

from imagekit import bw_codec, image_record  # noqa: F401  (bw_codec: a fixture)

from harness.pictures import dataset_grid, markdown_section, write_grids

B, W = [0, 0, 0, 0], [1, 1, 1, 1]


def records(cell_rows: list[list[int]], dataset: str = "d") -> list[dict]:
    out = []
    for k in range(3):
        rec = image_record([W] + cell_rows[1:], 1, reference=[B, B, B], prompt_id=f"{dataset}/{k}", dataset=dataset)
        out.append(rec)
    return out


def test_grid_layout_and_pixels(tmp_path: Path, bw_codec):
    from PIL import Image

    cells = {"m__base__greedy": records([W, W, W, W]), "m__fit__greedy": records([W, B, W, B])}
    png = dataset_grid("d", cells, {c: bw_codec for c in cells})
    image = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 18  # 4-pixel tiles enlarged to at least 72 px
    assert image.height == 28 + 3 * (4 * scale + 4) + 4  # header + originals + 2 cells
    assert image.width == 230 + 3 * (4 * scale + 4) + 4
    left, top = 230, 28
    # originals: white context row, black below; the red mark on the context boundary
    assert image.getpixel((left + 5, top + 5)) == (255, 255, 255)
    assert image.getpixel((left + 5, top + 2 * scale + 5)) == (0, 0, 0)
    assert image.getpixel((left + 5, top + scale)) == (230, 30, 30)
    # the first cell continues in white (stripes), the second alternates
    row2 = top + 4 * scale + 4
    assert image.getpixel((left + 5, row2 + 3 * scale + 5)) == (255, 255, 255)
    row3 = row2 + 4 * scale + 4
    assert image.getpixel((left + 5, row3 + 3 * scale + 5)) == (0, 0, 0)


def test_write_grids_per_dataset_and_markdown(tmp_path: Path, bw_codec):
    cells = {"m__base__greedy": records([W, W, W, W], "a") + records([W, W, W, W], "b")}
    paths = write_grids(tmp_path, cells, {"m__base__greedy": bw_codec}, ["a", "b", "c"])
    assert paths == ["pictures/a.png", "pictures/b.png"]
    assert (tmp_path / "pictures" / "a.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "pictures" / "old.png").write_bytes(b"x")
    write_grids(tmp_path, cells, {"m__base__greedy": bw_codec}, ["a"])
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == ["a.png"]
    section = markdown_section(paths)
    assert "![a completions](pictures/a.png)" in section and "[pictures/b.png](pictures/b.png)" in section
