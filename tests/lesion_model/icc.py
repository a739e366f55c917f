"""An ICC profile for tests: no wide-gamut profile ships with Pillow or this machine."""

from __future__ import annotations

import struct

from PIL import ImageCms

# The ICC header's creation date (bytes 24-35: year, month, day, hour, minute, second) is the moment lcms built
# the profile, so two calls a second apart gave different bytes and a comparison between them failed in CI.
# A fixed date makes every call return the same profile.
_FIXED_DATE = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)


def _srgb_bytes() -> bytearray:
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = _FIXED_DATE
    return data


def swapped_primaries_profile() -> bytes:
    """An RGB profile whose red and blue primaries are swapped: pixels stored as red are blue in sRGB.

    As far from sRGB as a profile gets, so "converted or not" cannot be missed (a real Display P3 photo differs
    from sRGB by a few levels only).
    """
    data = _srgb_bytes()
    (count,) = struct.unpack(">I", data[128:132])
    offsets = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, blue = offsets[b"rXYZ"], offsets[b"bXYZ"]
    data[red + 4 : red + 12], data[blue + 4 : blue + 12] = data[blue + 4 : blue + 12], data[red + 4 : red + 12]
    data[84:100] = bytes(16)  # the profile ID (an MD5) no longer matches: zero means "not computed"
    return bytes(data)


def srgb_profile() -> bytes:
    return bytes(_srgb_bytes())
