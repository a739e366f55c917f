"""The seed corpus for fuzzing the upload check: real photos, small, in every format and mode we accept.

Real phone photos (../shared/derm/uploads, with their EXIF) and dermoscopy images when present, else generated
lesion-like pictures; each shrunk to at most 96 px so that one run tries thousands of mutations, then written
as baseline and progressive JPEG (with an sRGB ICC profile on one), PNG (RGB, RGBA, palette with transparency,
16-bit grey), WebP and, where pillow-heif can encode, HEIC. Nothing is stored in the repository.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

SEED_SIDE = 96
SHARED_DERM = Path(__file__).resolve().parents[2].parent / "shared" / "derm"


def _real_photos(limit: int = 6) -> Iterator[tuple[str, Image.Image]]:
    sources = sorted((SHARED_DERM / "uploads").glob("*.jpg"))[:limit]
    sources += sorted((SHARED_DERM / "ham10000" / "HAM10000_images").glob("*.jpg"))[:2]
    for path in sources:
        image = Image.open(path)
        exif = image.info.get("exif")
        image.draft("RGB", (SEED_SIDE * 2, SEED_SIDE * 2))
        image = image.convert("RGB")
        image.thumbnail((SEED_SIDE, SEED_SIDE))
        if exif:
            image.info["exif"] = exif
        yield path.stem, image


def _generated(count: int = 3) -> Iterator[tuple[str, Image.Image]]:
    for seed in range(count):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:72, 0:SEED_SIDE]
        inside = ((xx - 48) ** 2 + (yy - 36) ** 2) < 20**2
        pixels = np.where(inside[..., None], [92, 58, 44], [214, 168, 140]) + rng.normal(0, 8, (72, SEED_SIDE, 3))
        yield f"generated-{seed}", Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _encodings(image: Image.Image) -> Iterator[tuple[str, bytes]]:
    def encode(fmt: str, picture: Image.Image, **params) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt, **params)
        return buffer.getvalue()

    exif = image.info.get("exif") or b""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    yield "jpg", encode("JPEG", image, quality=85, exif=exif)
    yield "progressive.jpg", encode("JPEG", image, quality=80, progressive=True, icc_profile=srgb)
    yield "png", encode("PNG", image)
    yield "rgba.png", encode("PNG", image.convert("RGBA"))
    palette = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    yield "palette.png", encode("PNG", palette, transparency=0)
    grey16 = (np.asarray(image.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    yield "16bit.png", encode("PNG", Image.fromarray(grey16))
    yield "webp", encode("WEBP", image, quality=80)
    try:
        heic = encode("HEIF", image, quality=60)
    except (KeyError, OSError, ValueError):  # pillow-heif without an HEVC encoder
        return
    yield "heic", heic


def write_seed_corpus(target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    pictures = list(_real_photos()) or list(_generated())
    written = []
    for name, image in pictures:
        for suffix, data in _encodings(image):
            path = target / f"{name}.{suffix}"
            path.write_bytes(data)
            written.append(path)
    return written
