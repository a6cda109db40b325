"""Images as Discord uploads: PNG when it fits the upload limit, else high-quality JPEG or WebP.

The stored PNG is never changed; only the uploaded copy is re-encoded. Pillow work is blocking,
so callers run ``fit_upload`` in a thread.
"""

from __future__ import annotations

import io

from PIL import Image

_QUALITIES = (95, 90, 85, 75, 60)


class UploadTooLarge(ValueError):
    """Even the smallest re-encoding does not fit the upload limit."""


def fit_upload(data: bytes, limit: int, stem: str) -> tuple[bytes, str]:
    """``(bytes, filename)`` for an image that must be at most ``limit`` bytes.

    PNG as stored when it fits; otherwise the first JPEG (then WebP) quality step that fits,
    best quality first; ``UploadTooLarge`` when nothing fits.
    """
    if len(data) <= limit:
        return data, f"{stem}.png"
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    for fmt, suffix in (("JPEG", "jpg"), ("WEBP", "webp")):
        for quality in _QUALITIES:
            out = io.BytesIO()
            rgb.save(out, format=fmt, quality=quality)
            if out.tell() <= limit:
                return out.getvalue(), f"{stem}.{suffix}"
    raise UploadTooLarge(
        f"the image is {len(data)} bytes and no JPEG/WebP encoding fits the "
        f"{limit}-byte upload limit"
    )
