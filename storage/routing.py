"""Model-aware routing: what a job needs, what a worker serves, and why a job still waits.

Both sides are plain sets of tokens: ``model:ALIAS``, ``profile:NAME``, ``lora:NAME``,
``control:KIND`` and ``ip_adapter`` (style or character references). A job's needs are stored
with it on enqueue (``jobs.needs``); a worker claims with the tokens of what it registered, and
the claim takes only jobs whose needs are a subset, so a host never loads a model it was not
configured with. A request that leaves a thing to the
default (the default model, the default profile) needs nothing for it: every worker has one.
Image prompts need no IP-Adapter (without one they are the img2img canvas); the bot keeps a
request's ``--sref``/``--cref`` only while some live worker has one (``bot.offered``), and such a
job then waits for a worker with an adapter rather than losing its references. While no worker
is live at all, every queued job waits: one that needs nothing special says so (``NO_WORKER``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from storage.contract import GenerationRequest, JobKind, SpeedMode

_PROFILES = {SpeedMode.TURBO: "turbo", SpeedMode.DRAFT: "draft"}
IP_ADAPTER = "ip_adapter"
NO_WORKER = "waiting for a worker: none is running right now"
# The kinds that paint with a request's references (upscales and edits refine one image).
_REFERENCE_KINDS = frozenset({JobKind.IMAGINE, JobKind.REROLL, JobKind.VARIATION})


def needs(request: GenerationRequest, kind: JobKind = JobKind.IMAGINE) -> list[str]:
    """The sorted tokens a worker must serve to paint ``request`` as a job of ``kind``."""
    wanted = set()
    if request.model:
        wanted.add(f"model:{request.model}")
    profile = _PROFILES.get(request.mode)
    # Upscales refine with the model as configured, never a fast profile.
    if profile is not None and kind is not JobKind.UPSCALE:
        wanted.add(f"profile:{profile}")
    wanted.update(f"lora:{name}" for name, _ in request.loras)
    if request.control is not None:
        wanted.add(f"control:{request.control.kind}")
    if (request.style_refs or request.character_refs) and kind in _REFERENCE_KINDS:
        wanted.add(IP_ADAPTER)
    return sorted(wanted)


def serves(capabilities: Mapping[str, Any] | None) -> list[str]:
    """The sorted tokens of what a worker registered (``workers.capabilities``)."""
    if not capabilities:
        return []
    tokens = {f"model:{name}" for name in capabilities.get("models") or ()}
    tokens.update(f"profile:{name}" for name in capabilities.get("profiles") or {})
    tokens.update(f"lora:{name}" for name in capabilities.get("loras") or {})
    tokens.update(f"control:{kind}" for kind in capabilities.get("controlnets") or ())
    if capabilities.get("ip_adapter"):
        tokens.add(IP_ADAPTER)
    return sorted(tokens)


def describe(token: str) -> str:
    """A token as a user reads it: ``model:niji`` is ``model niji``."""
    if token == IP_ADAPTER:
        return "an IP-Adapter"
    what, _, name = token.partition(":")
    label = {"model": "model", "profile": "profile", "lora": "style", "control": "ControlNet"}
    return f"{label.get(what, what)} {name}"


def waiting_reason(wanted: Iterable[str], served: Iterable[Iterable[str]]) -> str | None:
    """Why a queued job with needs ``wanted`` waits, given each live worker's tokens; None when
    some live worker serves all of it (a job that needs nothing special: any live worker)."""
    wanted = sorted(set(wanted))
    sets = [set(tokens) for tokens in served]
    if any(set(wanted) <= tokens for tokens in sets):
        return None
    if not wanted:
        return NO_WORKER
    missing = [token for token in wanted if not any(token in tokens for tokens in sets)]
    # Every thing is served somewhere, only not together: name the whole combination.
    named = missing or wanted
    return "waiting for a worker that serves " + " and ".join(describe(t) for t in named)


def live(last_seen: datetime, now: datetime, lease_seconds: float) -> bool:
    """Whether a worker last seen at ``last_seen`` still counts: seen within one lease."""
    return last_seen >= now - timedelta(seconds=lease_seconds)
