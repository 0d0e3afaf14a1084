"""``pmx slide info PATH``: what OpenSlide sees in a slide, and its tissue mask."""

from __future__ import annotations

from pathlib import Path

import click

from pmx.cli.output import echo_json, echo_table


@click.group("slide")
def slide() -> None:
    """Inspect whole-slide images."""


@slide.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--mpp", type=float, default=None,
              help="Level-0 pixel size override in um/px (for slides without one).")
@click.option("--thumbnail", "thumbnail_out", type=click.Path(path_type=Path), default=None,
              help="Write a thumbnail PNG (longest side --thumbnail-size).")
@click.option("--thumbnail-size", type=int, default=1024, show_default=True,
              help="Longest side of --thumbnail in pixels.")
@click.option("--mask", "mask_out", type=click.Path(path_type=Path), default=None,
              help="Write the tissue mask PNG (white = tissue) and report tissue figures.")
@click.option("--overlay", "overlay_out", type=click.Path(path_type=Path), default=None,
              help="Write the analysis thumbnail with tissue tinted green.")
@click.option("--tissue", "with_tissue", is_flag=True,
              help="Report tissue figures without writing images.")
def info(path: Path, as_json: bool, mpp: float | None, thumbnail_out: Path | None,
         thumbnail_size: int, mask_out: Path | None, overlay_out: Path | None,
         with_tissue: bool) -> None:
    """Vendor, size, levels, mpp and magnification of the slide at PATH."""
    from pmx.slides import detect_tissue, open_slide

    with open_slide(path, mpp=mpp) as handle:
        payload = handle.info().as_dict()
        if thumbnail_out is not None:
            from PIL import Image

            downsample = max(handle.width, handle.height) / max(thumbnail_size, 1)
            _save(Image.fromarray(handle.thumbnail(downsample)), thumbnail_out)
            payload["thumbnail"] = str(thumbnail_out)
        if mask_out is not None or overlay_out is not None or with_tissue:
            mask = detect_tissue(handle)
            payload["tissue"] = {
                "fraction": round(mask.tissue_fraction, 4),
                "otsu_threshold": mask.threshold,
                "mask_shape": list(mask.shape),
                "mask_mpp": mask.mask_mpp,
                "bbox": [round(v) for v in mask.bbox()] if mask.bbox() else None,
            }
            if mask_out is not None:
                _save(mask.as_image(), mask_out)
                payload["tissue"]["mask"] = str(mask_out)
            if overlay_out is not None:
                _save(mask.overlay(), overlay_out)
                payload["tissue"]["overlay"] = str(overlay_out)
    if as_json:
        echo_json(payload)
        return
    _print_text(payload)


def _save(image, target: Path) -> None:  # type: ignore[no-untyped-def]
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "unknown" if value is None else f"{value:.{digits}g}"


def _print_text(payload: dict) -> None:  # type: ignore[type-arg]
    source = payload["mpp_source"] or "none"
    click.echo(f"slide          {payload['slide_id']}")
    click.echo(f"path           {payload['path']} ({payload['file_size']:,} bytes)")
    click.echo(f"vendor         {payload['vendor'] or 'unknown'}")
    click.echo(f"size           {payload['width']} x {payload['height']} px (level 0)")
    click.echo(f"mpp            {_fmt(payload['mpp_x'])} x {_fmt(payload['mpp_y'])} um/px "
               f"(from {source})")
    click.echo(f"magnification  {_fmt(payload['magnification'], 3)}x (objective power "
               f"{_fmt(payload['objective_power'], 3)})")
    associated = ", ".join(payload["associated_images"]) or "none"
    click.echo(f"associated     {associated}")
    click.echo("")
    echo_table(["level", "width", "height", "downsample", "mpp"], [
        [lv["level"], lv["width"], lv["height"], f"{lv['downsample']:.3f}", _fmt(lv["mpp"])]
        for lv in payload["levels"]
    ])
    if "tissue" in payload:
        tissue = payload["tissue"]
        click.echo("")
        click.echo(f"tissue         {tissue['fraction']:.1%} of the slide (Otsu threshold "
                   f"{tissue['otsu_threshold']} on HSV saturation, mask "
                   f"{tissue['mask_shape'][1]}x{tissue['mask_shape'][0]})")
        for key in ("mask", "overlay"):
            if key in tissue:
                click.echo(f"{key:<15}{tissue[key]}")
    if "thumbnail" in payload:
        click.echo(f"thumbnail      {payload['thumbnail']}")
