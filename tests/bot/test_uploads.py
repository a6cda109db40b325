"""Uploads fit Discord's limit: PNG as stored when small, JPEG/WebP when not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.uploads import UploadTooLarge, fit_upload


def _png(size: int, seed: int = 0) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, format="PNG")
    return out.getvalue()


def test_small_png_is_sent_as_stored() -> None:
    data = _png(16)
    assert fit_upload(data, len(data), "grid") == (data, "grid.png")


def test_large_png_becomes_a_jpeg_within_the_limit() -> None:
    data = _png(256)
    limit = len(data) // 2
    payload, name = fit_upload(data, limit, "grid")
    assert name == "grid.jpg"
    assert len(payload) <= limit
    with Image.open(io.BytesIO(payload)) as image:
        assert image.format == "JPEG"
        assert image.size == (256, 256)


def test_nothing_fits_a_tiny_limit() -> None:
    with pytest.raises(UploadTooLarge, match="100-byte upload limit"):
        fit_upload(_png(64), 100, "grid")
