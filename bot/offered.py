"""Checking requests against what the workers serve, and the style picker's choices.

The bot never loads a model: it reads what workers registered (``storage.capabilities``) and
refuses at enqueue a LoRA style, speed profile or ControlNet that no live worker offers, naming
what is offered instead, and what the request's model family cannot paint (``for_family``).
Style and character references are different: Midjourney treats them as a hint, so where no
live worker has an IP-Adapter they are dropped at enqueue with a note (``served_references``)
and the job paints without them instead of waiting for an adapter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bot.errors import UserFacingError
from bot.render import clip
from storage.capabilities import Offered
from storage.contract import GenerationRequest, JobKind, JobSpec, SpeedMode
from storage.families import painted, refusal, without_references

MAX_CHOICES = 25
_PROFILE_MODES = {SpeedMode.TURBO: "turbo", SpeedMode.DRAFT: "draft"}


def check_offered(requests: Sequence[GenerationRequest], offered: Offered) -> None:
    """Raise ``UserFacingError`` for the first thing in ``requests`` no worker serves."""
    for request in requests:
        unknown = offered.unknown_loras(name for name, _ in request.loras)
        if unknown:
            names = ", ".join(f"`{name}`" for name, _, _ in offered.styles()) or "none"
            raise UserFacingError(
                f"`--lora {unknown[0]}`: there is no such style here. Available styles: "
                f"{names} (see /styles)."
            )
        profile = _PROFILE_MODES.get(request.mode)
        if profile is not None and profile not in offered.profiles:
            have = ", ".join(f"`--{name}`" for name in sorted(offered.profiles)) or "none"
            raise UserFacingError(
                f"`--{profile}` (or the {profile} speed mode in /settings) needs the {profile} "
                f"profile, which this server does not offer. Fast profiles here: {have}."
            )
        control = request.control
        if control:
            kind = str(control.kind)
            if kind not in offered.controlnets:
                have = ", ".join(f"`{k}`" for k in sorted(offered.controlnets)) or "none"
                raise UserFacingError(
                    f"`--control {kind}`: this server has no {kind} ControlNet. "
                    f"ControlNets here: {have}."
                )


def for_family(
    requests: Sequence[GenerationRequest], offered: Offered, kind: JobKind = JobKind.IMAGINE
) -> list[GenerationRequest]:
    """The requests as their model's family paints them (a note for each parameter it paints
    without); ``UserFacingError`` for the first one it cannot paint at all
    (``storage.families``)."""
    checked = []
    for request in requests:
        family = offered.family(request.model)
        problem = refusal(request, family, kind)
        if problem is not None:
            raise UserFacingError(problem[0].upper() + problem[1:] + ".")
        checked.append(painted(request, family))
    return checked


def check_button_spec(spec: JobSpec, offered: Offered) -> JobSpec:
    """A button's new grid as /imagine would queue it: references kept only where an adapter
    is, and refused (``UserFacingError``, the same message) for what no live worker serves.

    Upscales are left alone: they refine with the configured model and need no profile.
    """
    if spec.kind is JobKind.UPSCALE:
        return spec
    [request] = for_family([spec.request], offered, spec.kind)
    [request] = served_references([request], ip_adapter=offered.ip_adapter)
    check_offered([request], offered)
    if request is spec.request:
        return spec
    return dataclasses.replace(spec, request=request, style_images=(), character_images=())


def served_references(
    requests: Sequence[GenerationRequest], *, ip_adapter: bool
) -> list[GenerationRequest]:
    """The requests, less their ``--sref``/``--cref`` (noted) unless ``ip_adapter``: whether
    some live worker has one (``Offered.ip_adapter``)."""
    if ip_adapter:
        return list(requests)
    return [without_references(request, "this server") for request in requests]


def with_style(
    requests: Sequence[GenerationRequest], style: str | None, offered: Offered
) -> list[GenerationRequest]:
    """The requests with the ``style`` option's LoRA added at its default weight."""
    if not style:
        return list(requests)
    info = offered.loras.get(style)
    weight = float(info.get("weight", 1.0)) if info is not None else 1.0
    return [
        request
        if any(name == style for name, _ in request.loras)
        else dataclasses.replace(request, loras=(*request.loras, (style, weight)))
        for request in requests
    ]


def style_choices(offered: Offered, typed: str) -> list[tuple[str, str]]:
    """(label, value) autocomplete choices for the styles whose name contains ``typed``."""
    needle = typed.strip().lower()
    choices = []
    for name, trigger, weight in offered.styles():
        if needle in name:
            label = f"{name} (weight {weight:g}" + (f", trigger: {trigger})" if trigger else ")")
            choices.append((label[:100], name))
    return choices[:MAX_CHOICES]


def styles_content(offered: Offered) -> str:
    """The /styles reply: each style with its trigger words and default weight."""
    styles = offered.styles()
    if not styles:
        return "No LoRA styles are available on this server."
    lines = ["**Styles** (`--lora NAME` or `--lora NAME:0.8`, weight 0 to 2, up to 4):"]
    for name, trigger, weight in styles:
        words = f", trigger: {trigger}" if trigger else ""
        lines.append(f"- `{name}`: default weight {weight:g}{words}")
    return clip("\n".join(lines))
