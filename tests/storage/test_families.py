"""What each model family honours: the refusals and notes the bot and the worker share."""

from __future__ import annotations

import pytest

from storage.contract import Control, ControlKind, GenerationRequest, JobKind, SpeedMode
from storage.families import family_of, notes, painted, refusal


def _request(**changes: object) -> GenerationRequest:
    return GenerationRequest(prompt="a fox", model="cascade", **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "kind", "expected"),
    [
        ({}, JobKind.IMAGINE, None),
        ({}, JobKind.VARIATION, None),
        ({"mode": SpeedMode.TURBO}, JobKind.UPSCALE, None),
        (
            {"loras": (("ink", 1.0),)},
            JobKind.IMAGINE,
            "`--lora ink`: model `cascade` is Stable Cascade, which takes no LoRA styles (SDXL's)",
        ),
        (
            {"control": Control(ControlKind.DEPTH, 0.5)},
            JobKind.REROLL,
            "`--control depth`: model `cascade` is Stable Cascade, which has no ControlNets",
        ),
        (
            {"mode": SpeedMode.DRAFT},
            JobKind.IMAGINE,
            "`--draft`: model `cascade` is Stable Cascade, which has no draft profile (those are "
            "distilled SDXL); leave the speed mode at fast or relax",
        ),
        (
            {},
            JobKind.INPAINT,
            "Zoom Out, Pan, Make Square and Vary (Region) need SDXL inpainting, and model "
            "`cascade` is Stable Cascade; upscale the image or vary it instead",
        ),
    ],
)
def test_cascade_refuses_what_needs_sdxl(
    changes: dict[str, object], kind: JobKind, expected: str | None
) -> None:
    assert refusal(_request(**changes), "cascade", kind) == expected
    # SDXL paints all of it.
    assert refusal(_request(**changes), "sdxl", kind) is None


def test_cascade_notes_what_it_paints_without() -> None:
    request = _request(
        tile=True, chaos=40, weird=0, stop=80, image_urls=("https://x/y.png",), image_weight=2.0
    )
    assert notes(request, "cascade") == (
        "--tile: Stable Cascade does not tile; painted as a plain image",
        "--chaos 40: not applied by Stable Cascade",
        "--iw 2: Stable Cascade conditions on image prompts at one fixed weight",
    )
    assert notes(_request(), "cascade") == ()
    assert notes(request, "sdxl") == ()


def test_an_alias_nobody_registered_is_sdxl() -> None:
    families = {"default": "sdxl", "cascade": "cascade"}
    assert family_of(families, "cascade") == "cascade"
    assert family_of(families, None) == "sdxl"
    assert family_of({}, "niji") == "sdxl"


def test_cascade_paints_without_references_and_says_so() -> None:
    request = _request(style_refs=("https://x/style.png",), style_weight=300, tile=True)
    cascade = painted(request, "cascade")
    assert (cascade.style_refs, cascade.style_weight) == ((), 100)
    assert cascade.notes == (
        "--tile: Stable Cascade does not tile; painted as a plain image",
        "--sref https://x/style.png: ignored; Stable Cascade has no IP-Adapter for style "
        "references",
    )
    # Painted again (a re-roll of that grid): nothing more to note, the same request.
    assert painted(cascade, "cascade") is cascade
    assert painted(request, "sdxl") is request
