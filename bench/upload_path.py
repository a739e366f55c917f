"""Where an upload's web-side time goes: ms per photo for each step of `image_prepare_upload`, and the whole call
both ways: a JPEG kept as taken (metadata stripped, no pixel decoded: the default up to
MELANOMA_KEEP_ORIGINAL_MAX_BYTES) and the re-encoding path (larger JPEGs, other formats).

    .venv/bin/python -m bench.upload_path                          # ../shared/derm/uploads (generated if absent)
    .venv/bin/python -m bench.upload_path --images DIR --repeats 10

The steps are timed one by one on the same calls `image_prepare_upload` makes (open the header, decode at the
draft scale, EXIF upright + sRGB, downscale to the stored size, thumbnail from the stored copy, the two JPEG
encodes), then the whole call is timed as it runs in the web process, re-encoding and kept as taken. Each
figure is the median of --repeats runs after one warm-up, per photo; the last row is the median over the photos.
Single-threaded, no Django request, no storage: what a web core spends on the pixels.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")

STEPS = (
    "open",
    "decode",
    "upright+srgb",
    "downscale",
    "thumbnail",
    "encode",
    "encode thumb",
    "total",
    "re-encoded call",
    "kept call",
)


def _time_ms(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    result = function()  # warm-up (and the value the next step works on)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def profile_photo(data: bytes, repeats: int) -> dict[str, float]:
    """ms per step for one photo; the steps mirror classifier.images.image_prepare_upload."""
    from django.test import override_settings  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from classifier import images  # noqa: PLC0415
    from lesion_model import decode as decoding  # noqa: PLC0415

    stored, thumb = images.stored_sizes()
    times: dict[str, float] = {}

    def opened() -> Image.Image:
        return decoding.open_image(data, max_pixels=images.DEFAULT_MAX_PIXELS)

    times["open"], header = _time_ms(opened, repeats)
    assert isinstance(header, Image.Image)
    draft = images.draft_size(header.size, stored)

    def loaded() -> Image.Image:
        image = opened()
        if image.format in decoding.JPEG_FORMATS:
            image.draft("RGB", draft)
        image.load()
        return image

    times["decode"], raw = _time_ms(loaded, repeats)
    times["decode"] -= times["open"]
    assert isinstance(raw, Image.Image)
    icc = raw.info.get("icc_profile")
    times["upright+srgb"], pixels = _time_ms(lambda: decoding.upright_srgb(raw.copy(), icc), repeats)
    assert isinstance(pixels, Image.Image)
    times["downscale"], reduced = _time_ms(lambda: images.downscale(pixels.copy(), stored), repeats)
    assert isinstance(reduced, Image.Image)
    times["thumbnail"], small = _time_ms(lambda: images.downscale(reduced, thumb, thumbnail=True), repeats)
    assert isinstance(small, Image.Image)
    times["encode"], _ = _time_ms(lambda: images.encode_jpeg(reduced, images.JPEG_QUALITY), repeats)
    times["encode thumb"], _ = _time_ms(lambda: images.encode_jpeg(small, images.THUMBNAIL_QUALITY), repeats)
    times["total"] = sum(times[step] for step in STEPS[:7])
    with override_settings(MELANOMA_KEEP_ORIGINAL_MAX_BYTES=0):
        times["re-encoded call"], _ = _time_ms(lambda: images.image_prepare_upload(data), repeats)
    with override_settings(MELANOMA_KEEP_ORIGINAL_MAX_BYTES=len(data)):
        times["kept call"], _ = _time_ms(lambda: images.image_prepare_upload(data), repeats)
    return times


def _photos(folder: Path) -> list[tuple[str, bytes]]:
    found = sorted(path for path in folder.glob("*") if path.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if found:
        return [(path.name, path.read_bytes()) for path in found]
    from bench.synthetic import lesion_jpeg  # noqa: PLC0415

    print(f"no photos in {folder}: one generated 3072x2304 JPEG", file=sys.stderr)
    return [("generated.jpg", lesion_jpeg(3072, 2304))]


def main(argv: list[str] | None = None) -> int:
    from bench.common import SHARED_DERM  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=SHARED_DERM / "uploads")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import django  # noqa: PLC0415

    django.setup()
    from PIL import Image  # noqa: PLC0415

    photos = _photos(args.images)
    rows = []
    for name, data in photos:
        size = Image.open(io.BytesIO(data)).size
        rows.append((f"{name} {size[0]}x{size[1]} {len(data) / 1024:.0f} KiB", profile_photo(data, args.repeats)))
    load = os.getloadavg()
    print(
        f"Upload path, ms per photo (median of {args.repeats}); {platform.node()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("| photo | " + " | ".join(STEPS) + " |")
    print("|---|" + "---:|" * len(STEPS))
    for label, times in rows:
        print(f"| {label} | " + " | ".join(f"{times[step]:.1f}" for step in STEPS) + " |")
    medians = {step: statistics.median(times[step] for _, times in rows) for step in STEPS}
    print("| **median** | " + " | ".join(f"{medians[step]:.1f}" for step in STEPS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
