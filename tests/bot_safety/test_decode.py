"""The image check on hostile bytes: every file Pillow can write, damaged and random bytes.

Whatever arrives, ``decode_image`` either accepts a PNG, JPEG (MPO included), WebP or GIF, or
raises ``FetchRefused`` with a reason; no other exception may escape.
"""

from __future__ import annotations

import io
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.safety import FetchRefused, decode_image

ACCEPTED = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp", "GIF": "gif"}
MODES = ("RGB", "L", "RGBA", "1", "P")


def _written(fmt: str) -> bytes | None:
    """A small picture in ``fmt``, in the first mode Pillow's writer takes (None: none does)."""
    for mode in MODES:
        image = Image.new(mode, (24, 16))
        image.paste(Image.new(mode, (8, 8), 1 if mode in ("1", "P") else "white"), (4, 4))
        out = io.BytesIO()
        try:
            with warnings.catch_warnings():
                # Writers Pillow deprecated (IM) still write files someone may send.
                warnings.simplefilter("ignore", DeprecationWarning)
                if fmt == "MPO":
                    image.save(out, fmt, save_all=True, append_images=[image.copy()])
                else:
                    image.save(out, fmt)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # this writer needs a plugin handler or another mode
        return out.getvalue()
    return None


def _samples() -> dict[str, bytes]:
    Image.init()
    samples = {fmt: _written(fmt) for fmt in sorted(Image.SAVE)}
    return {fmt: data for fmt, data in samples.items() if data}


SAMPLES = _samples()
HEADERS = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"\xff\xd8\xff\xe2",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\xff\xff\xff\x7fWEBPVP8L",
]


def test_the_samples_cover_the_usual_formats() -> None:
    assert set(ACCEPTED) | {"BMP", "TIFF", "ICO", "PDF", "JPEG2000"} <= set(SAMPLES)


def test_a_phone_photo_with_several_pictures_is_a_jpeg() -> None:
    first = Image.new("RGB", (40, 30), (200, 10, 10))
    gain_map = Image.new("L", (20, 15), 128)
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[gain_map.convert("RGB")])
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        assert opened.format == "MPO"  # what used to crash the check
    checked = decode_image(out.getvalue())
    assert (checked.format, checked.content_type, checked.width, checked.height) == (
        "jpeg",
        "image/jpeg",
        40,
        30,
    )


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_every_format_pillow_writes_is_accepted_or_refused(fmt: str) -> None:
    data = SAMPLES[fmt]
    if fmt in ACCEPTED:
        checked = decode_image(data)
        assert (checked.format, checked.width, checked.height) == (ACCEPTED[fmt], 24, 16)
    else:
        with pytest.raises(FetchRefused, match=r"^the file is not a PNG, JPEG, WebP or GIF image$"):
            decode_image(data)


def _only_refusals(data: bytes) -> None:
    try:
        decode_image(data)
    except FetchRefused as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=400, deadline=None)
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    keep=st.floats(0.0, 1.0),
    where=st.floats(0.0, 1.0),
    noise=st.binary(max_size=48),
)
def test_truncated_or_overwritten_files_only_ever_refuse(
    fmt: str, keep: float, where: float, noise: bytes
) -> None:
    data = SAMPLES[fmt]
    damaged = data[: int(len(data) * keep)]
    at = int(len(damaged) * where)
    _only_refusals(damaged[:at] + noise + damaged[at + len(noise) :])


@settings(max_examples=300, deadline=None)
@given(
    header=st.sampled_from(HEADERS),
    garbage=st.binary(max_size=2048),
)
def test_random_bytes_behind_a_real_header_only_ever_refuse(header: bytes, garbage: bytes) -> None:
    _only_refusals(header + garbage)


@pytest.mark.parametrize("fmt", sorted(ACCEPTED))
def test_every_truncation_of_an_accepted_format_refuses_or_decodes(fmt: str) -> None:
    data = SAMPLES[fmt]
    for cut in range(len(data)):
        _only_refusals(data[:cut])


def test_a_reduced_decode_still_reads_the_whole_jpeg() -> None:
    photo = Image.effect_noise((1600, 1200), 60).convert("RGB")
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    data = out.getvalue()
    checked = decode_image(data, fit=(256, 256))
    assert (checked.width, checked.height, checked.format) == (1600, 1200, "jpeg")
    with pytest.raises(FetchRefused, match="damaged or truncated"):
        decode_image(data[: len(data) * 2 // 3], fit=(256, 256))
