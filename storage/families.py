"""What each model family honours: shared by the bot (refusals and notes at enqueue) and the
worker (the same refusals for jobs that reach it anyway). Plain data, no torch.

Families: ``sdxl`` (Stable Diffusion XL, every parameter) and ``cascade`` (Stable Cascade,
Wuerstchen v3). A worker registers the family of each model alias it serves
(``capabilities["families"]``, alias -> family; ``default`` is its default model), so the bot
knows which family a ``--model`` paints with before it queues anything.

Stable Cascade refuses what needs SDXL components (``--lora`` styles, ``--control``
ControlNets, the ``--turbo`` / ``--draft`` profiles; the IP-Adapter behind ``--sref`` /
``--cref`` is dropped with a note, as where no worker has one), the inpainting pipeline behind
Zoom Out, Pan, Make Square and Vary (Region)) and notes what it paints without (``--tile``,
``--chaos``, ``--weird``, ``--iw``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from storage.contract import GenerationRequest, JobKind, SpeedMode

SDXL = "sdxl"
CASCADE = "cascade"
LABELS = {SDXL: "SDXL", CASCADE: "Stable Cascade"}
DEFAULT_ALIAS = "default"
_EDITS = (JobKind.OUTPAINT, JobKind.INPAINT)


def family_of(families: Mapping[str, str], model: str | None) -> str:
    """The family of alias ``model`` (None: the default model); SDXL when nobody said."""
    return families.get(model or DEFAULT_ALIAS, SDXL)


def _who(model: str | None) -> str:
    return f"model `{model or DEFAULT_ALIAS}` is Stable Cascade"


def refusal(request: GenerationRequest, family: str, kind: JobKind = JobKind.IMAGINE) -> str | None:
    """Why ``family`` cannot paint ``request`` as a job of ``kind``, or None when it can."""
    if family != CASCADE:
        return None
    who = _who(request.model)
    if kind in _EDITS:
        return (
            f"Zoom Out, Pan, Make Square and Vary (Region) need SDXL inpainting, and {who}; "
            "upscale the image or vary it instead"
        )
    if request.loras:
        return f"`--lora {request.loras[0][0]}`: {who}, which takes no LoRA styles (SDXL's)"
    if request.control is not None:
        return f"`--control {request.control.kind}`: {who}, which has no ControlNets"
    if request.mode in (SpeedMode.TURBO, SpeedMode.DRAFT) and kind is not JobKind.UPSCALE:
        return (
            f"`--{request.mode}`: {who}, which has no {request.mode} profile (those are "
            "distilled SDXL); leave the speed mode at fast or relax"
        )
    return None


def notes(request: GenerationRequest, family: str) -> tuple[str, ...]:
    """One note per parameter ``family`` accepts but paints without, as ``notes`` read."""
    if family != CASCADE:
        return ()
    found = []
    if request.tile:
        found.append("--tile: Stable Cascade does not tile; painted as a plain image")
    if request.chaos:
        found.append(f"--chaos {request.chaos}: not applied by Stable Cascade")
    if request.weird:
        found.append(f"--weird {request.weird}: not applied by Stable Cascade")
    if request.image_urls and request.image_weight != 1.0:
        found.append(
            f"--iw {request.image_weight:g}: Stable Cascade conditions on image prompts "
            "at one fixed weight"
        )
    return tuple(note for note in found if note not in request.notes)


def painted(request: GenerationRequest, family: str) -> GenerationRequest:
    """``request`` as ``family`` paints it: with its ``notes``, and, on a family without an
    IP-Adapter, less its style and character references (noted); the same object when
    nothing changes."""
    extra = notes(request, family)
    if extra:
        request = dataclasses.replace(request, notes=(*request.notes, *extra))
    if family == CASCADE:
        request = without_references(request, "Stable Cascade")
    return request


def without_references(request: GenerationRequest, who: str) -> GenerationRequest:
    """``request`` less its ``--sref``/``--cref`` references, each noted as ignored because
    ``who`` (``this server``, ``Stable Cascade``) has no IP-Adapter; the same object when it
    has none."""
    dropped = [
        f"{flag} {' '.join(urls)}: ignored; {who} has no IP-Adapter for {role} references"
        for flag, urls, role in (
            ("--sref", request.style_refs, "style"),
            ("--cref", request.character_refs, "character"),
        )
        if urls
    ]
    if not dropped:
        return request
    return dataclasses.replace(
        request,
        style_refs=(),
        style_weight=100,
        character_refs=(),
        character_weight=100,
        notes=(*request.notes, *dropped),
    )
