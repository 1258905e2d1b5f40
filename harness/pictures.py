"""Picture grids of image completions: what a person looks at to see stripes, blobs or plausible digits.

One PNG per eval dataset, ``results/<benchmark>/pictures/<dataset>.png``: one column per context (the first
``columns`` prompts, first draw), one row for the originals and then one per model × recipe × decoder cell.
Each tile is the full image (context rows, then the generated or original rows), enlarged without smoothing;
a red line marks where the context ends. Needs only Pillow, imported when a grid is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.api import ImageCodec
from harness.store import atomic_write_bytes

MARK = (230, 30, 30)  # the context boundary line
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
LABEL_WIDTH = 230
GAP = 4
TILE_MIN = 72  # tiles are enlarged by an integer factor to at least this many pixels


def _tile(codec: ImageCodec, ids: Sequence[int], context_rows: int, scale: int) -> Any:
    from PIL import Image, ImageDraw

    payload = codec.to_image(ids)
    image = Image.frombytes("RGB", (payload.width, payload.height), payload.pixels)
    image = image.resize((payload.width * scale, payload.height * scale), Image.NEAREST)
    y = context_rows * scale
    ImageDraw.Draw(image).line([(0, y), (image.width - 1, y)], fill=MARK, width=max(1, scale // 3))
    return image


def draw_grid(title: str, rows: list[tuple[str, list[tuple[ImageCodec, list[int], int]]]]) -> bytes:
    """A PNG of labelled rows of tiles; each tile is (codec, ids without restriction, context rows)."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    first = rows[0][1][0][0]
    scale = max(1, -(-TILE_MIN // max(first.height, first.width)))
    tile_w, tile_h = first.width * scale, first.height * scale
    columns = max(len(tiles) for _, tiles in rows)
    header = 28
    width = LABEL_WIDTH + columns * (tile_w + GAP) + GAP
    height = header + len(rows) * (tile_h + GAP) + GAP
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((GAP, 8), title, fill=TEXT, font=font)
    for r, (label, tiles) in enumerate(rows):
        top = header + r * (tile_h + GAP)
        draw.text((GAP, top + tile_h // 2 - 6), label, fill=TEXT, font=font)
        for c, (codec, ids, context_rows) in enumerate(tiles):
            canvas.paste(_tile(codec, ids, context_rows, scale), (LABEL_WIDTH + c * (tile_w + GAP), top))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _context_rows(record: dict[str, Any], width: int) -> int:
    n = len(record.get("context_ids") or [])
    return (n - 1) // width if n % width == 1 else n // width


def dataset_grid(
    dataset: str, cells: dict[str, list[dict[str, Any]]], codecs: dict[str, ImageCodec], columns: int = 12
) -> bytes | None:
    """The grid for one eval dataset from each cell's records (cell id → records; codecs by cell id)."""
    chosen: list[str] = []
    originals: dict[str, dict[str, Any]] = {}
    for records in cells.values():
        for rec in records:
            if rec.get("dataset") == dataset and rec.get("image_shape") and rec.get("sample_idx", 0) == 0:
                if rec["prompt_id"] not in originals:
                    originals[rec["prompt_id"]] = rec
                    if len(chosen) < columns:
                        chosen.append(rec["prompt_id"])
    if not chosen:
        return None
    some_cell = next(iter(cells))
    codec = codecs[some_cell]
    label_of = {p: originals[p].get("label") for p in chosen}
    labels = [label_of[p] for p in chosen if label_of[p] is not None]
    title = f"{dataset}: top = original; red line = end of the context" + (f"; labels {' '.join(labels)}" if labels else "")
    rows = [(
        "original",
        [(codec, list(originals[p]["context_ids"]) + list(originals[p].get("reference_ids") or []),
          _context_rows(originals[p], codec.width)) for p in chosen],
    )]  # fmt: skip
    for cell_id, records in cells.items():
        by_prompt = {
            r["prompt_id"]: r for r in records if r.get("dataset") == dataset and r.get("sample_idx", 0) == 0
        }
        cell_codec = codecs[cell_id]
        tiles = []
        for p in chosen:
            rec = by_prompt.get(p)
            ids = list(rec["context_ids"]) + list(rec["output_ids"]) if rec else []
            tiles.append((cell_codec, ids, _context_rows(rec, cell_codec.width) if rec else 0))
        rows.append((cell_id.replace("__", " / "), tiles))
    return draw_grid(title, rows)


def write_grids(
    root: Path, cells: dict[str, list[dict[str, Any]]], codecs: dict[str, ImageCodec], datasets: Sequence[str]
) -> list[str]:
    """Write pictures/<dataset>.png for every eval dataset with image generations; return the relative paths."""
    written = []
    folder = Path(root) / "pictures"
    for dataset in datasets:
        png = dataset_grid(dataset, cells, codecs)
        if png is None:
            continue
        atomic_write_bytes(folder / f"{dataset}.png", png)
        written.append(f"pictures/{dataset}.png")
    if folder.is_dir():  # drop grids of datasets no longer evaluated
        for old in folder.glob("*.png"):
            if f"pictures/{old.name}" not in written:
                old.unlink()
    return written


def markdown_section(paths: Sequence[str]) -> str:
    """The leaderboard's pictures section: a link and an inline image per grid."""
    lines = ["## Pictures", "", "Completions of the first contexts (top row: the originals; red line: end of the context).", ""]
    for path in paths:
        name = Path(path).stem
        lines += [f"**{name}**: [{path}]({path})", "", f"![{name} completions]({path})", ""]
    return "\n".join(lines)
