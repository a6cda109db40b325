"""The job contract: plain data shared by the bot and the workers.

No SQLAlchemy, discord or torch here. The bot produces ``GenerationRequest``s (from the prompt
parser) and enqueues them; workers claim ``Job``s and store ``ImageRecord``s. The ORM tables live
in ``storage.tables`` and convert with ``Job.from_row``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

MAX_SEED = 4_294_967_295
# Discord ids (users, guilds, channels, messages, interactions) are stored as signed 64-bit.
MAX_ID = 2**63 - 1
GRID_SIZE = 4
# The largest image an upscale starts from: a grid image (about 1 MP) upscales twice, to at
# most 4096x4096, and no further. The bot refuses bigger ones before charging; the worker too.
MAX_UPSCALE_SOURCE_PIXELS = 2048 * 2048


class JobKind(StrEnum):
    """What a job asks the worker to do."""

    IMAGINE = "imagine"
    VARIATION = "variation"
    UPSCALE = "upscale"
    REROLL = "reroll"
    # Zoom Out, Pan and Make Square: a larger canvas around the source, new area painted.
    OUTPAINT = "outpaint"
    # Vary (Region): the painted part of the source repainted.
    INPAINT = "inpaint"


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class SpeedMode(StrEnum):
    """Speed modes; relax costs no quota and runs at the lowest priority."""

    TURBO = "turbo"
    FAST = "fast"
    RELAX = "relax"
    DRAFT = "draft"


class ControlKind(StrEnum):
    """What a ControlNet conditions on, extracted from the image prompt."""

    CANNY = "canny"
    DEPTH = "depth"


@dataclass(frozen=True)
class Control:
    """``--control K[:scale]``: structure from the image prompt, at this conditioning scale."""

    kind: ControlKind
    scale: float = 0.5


@dataclass(frozen=True)
class GenerationRequest:
    """One normalized request, as the prompt parser produces it (DESIGN section 4).

    ``to_dict`` gives exactly the JSON object that ``imagine parse`` prints for it.
    """

    prompt: str
    segments: tuple[tuple[str, float], ...] = ()
    negative_prompt: str | None = None
    image_urls: tuple[str, ...] = ()
    image_weight: float = 1.0
    aspect: str = "1:1"
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    chaos: int = 0
    stylize: int = 100
    quality: float = 1.0
    steps: int = 30
    stop: int = 100
    tile: bool = False
    raw: bool = False
    weird: int = 0
    model: str | None = None
    mode: SpeedMode = SpeedMode.FAST
    loras: tuple[tuple[str, float], ...] = ()
    control: Control | None = None
    translate: bool = True
    # Style (``--sref``, weight ``--sw`` 0..1000) and character (``--cref``, ``--cw`` 0..100)
    # reference image URLs, painted through an IP-Adapter.
    style_refs: tuple[str, ...] = ()
    style_weight: int = 100
    character_refs: tuple[str, ...] = ()
    character_weight: int = 100
    # One line per parameter accepted but not honoured as written, starting with it as typed.
    notes: tuple[str, ...] = ()

    def with_seed(self, seed: int) -> GenerationRequest:
        """The same request with a fixed seed."""
        return dataclasses.replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the contract's keys."""
        data = dataclasses.asdict(self)
        data["segments"] = [[text, weight] for text, weight in self.segments]
        data["image_urls"] = list(self.image_urls)
        data["mode"] = str(self.mode)
        data["loras"] = [[name, weight] for name, weight in self.loras]
        data["style_refs"] = list(self.style_refs)
        data["character_refs"] = list(self.character_refs)
        if self.control is not None:
            data["control"] = {"kind": str(self.control.kind), "scale": self.control.scale}
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationRequest:
        """Inverse of ``to_dict``; unknown keys are ignored so old rows stay readable."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["segments"] = tuple((str(t), float(w)) for t, w in values.get("segments", ()))
        values["image_urls"] = tuple(values.get("image_urls", ()))
        values["mode"] = SpeedMode(values.get("mode", SpeedMode.FAST))
        values["loras"] = tuple((str(n), float(w)) for n, w in values.get("loras", ()))
        values["style_refs"] = tuple(str(url) for url in values.get("style_refs", ()))
        values["character_refs"] = tuple(str(url) for url in values.get("character_refs", ()))
        control = values.get("control")
        if control is not None:
            values["control"] = Control(ControlKind(control["kind"]), float(control["scale"]))
        values["notes"] = tuple(str(note) for note in values.get("notes", ()))
        return cls(**values)


class EditAction(StrEnum):
    """Which edit of one image an outpaint or inpaint job makes."""

    ZOOM = "zoom"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    PAN_UP = "pan_up"
    PAN_DOWN = "pan_down"
    SQUARE = "square"
    REGION = "region"


@dataclass(frozen=True)
class Edit:
    """An edit of one stored image: the canvas it grows to and what is repainted.

    Sizes are in the source's pixels: the canvas is ``canvas`` and the source sits on it with its
    top-left corner at ``offset``; everything outside the source is new. ``mask`` (region edits)
    is the sha256 of a stored grayscale image of the source's size, white where to repaint.
    """

    action: EditAction
    source: str
    source_size: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int] = (0, 0)
    zoom: float | None = None
    mask: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ``jobs.edit`` column)."""
        return {
            "action": str(self.action),
            "source": self.source,
            "source_size": list(self.source_size),
            "canvas": list(self.canvas),
            "offset": list(self.offset),
            "zoom": self.zoom,
            "mask": self.mask,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Edit:
        """Inverse of ``to_dict``."""

        def pair(key: str) -> tuple[int, int]:
            first, second = data[key]
            return int(first), int(second)

        zoom = data.get("zoom")
        return cls(
            action=EditAction(data["action"]),
            source=str(data["source"]),
            source_size=pair("source_size"),
            canvas=pair("canvas"),
            offset=pair("offset"),
            zoom=None if zoom is None else float(zoom),
            mask=data.get("mask"),
        )


@dataclass(frozen=True)
class StoredImage:
    """An image a worker stored, passed to ``finish`` (index 0-3 in a grid; -1 the grid)."""

    index: int
    sha256: str
    width: int
    height: int
    seed: int
    size_bytes: int
    path: str


@dataclass(frozen=True, kw_only=True)
class ImageRecord(StoredImage):
    """One stored image of a job, as read back from storage."""

    job_id: int

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ImageRecord:
        """From an ``images`` row."""
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Job:
    """A unit of GPU work and everything needed to deliver its result."""

    id: int
    kind: JobKind
    status: JobStatus
    user_id: int
    request: GenerationRequest
    seed: int
    cost: int
    guild_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None
    interaction_id: int | None = None
    parent_job_id: int | None = None
    parent_index: int | None = None
    strength: float | None = None
    input_images: tuple[str, ...] = ()
    # Stored blobs of the request's style and character references (``jobs.reference_images``).
    style_images: tuple[str, ...] = ()
    character_images: tuple[str, ...] = ()
    edit: Edit | None = None
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 3
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    progress: int = 0
    preview: bytes | None = field(default=None, repr=False)
    # First line: the reason the public job message shows; later lines: details for operators.
    error: str | None = None
    cancel_requested: bool = False
    gpu_seconds: float | None = None
    rendered: dict[str, Any] | None = field(default=None, repr=False)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    delivered_at: datetime | None = None
    prompt_text: str | None = None
    images_purged_at: datetime | None = None
    relax_images: int = 0
    delivery_attempts: int = 0
    next_delivery_at: datetime | None = None
    delivery_error: str | None = None
    undeliverable_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Job:
        """Build a job from a ``jobs`` table row (a mapping of column name to value)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        values["kind"] = JobKind(row["kind"])
        values["status"] = JobStatus(row["status"])
        values["request"] = GenerationRequest.from_dict(row["request"])
        values["input_images"] = tuple(row.get("input_images") or ())
        references = row.get("reference_images") or {}
        values["style_images"] = tuple(references.get("style") or ())
        values["character_images"] = tuple(references.get("character") or ())
        values["cancel_requested"] = bool(row.get("cancel_requested", False))
        edit = row.get("edit")
        values["edit"] = Edit.from_dict(edit) if edit else None
        return cls(**values)


class VariationStrength(StrEnum):
    """How far V buttons move from the source image."""

    STRONG = "strong"
    SUBTLE = "subtle"

    @property
    def denoise(self) -> float:
        return 0.85 if self is VariationStrength.STRONG else 0.5


@dataclass(frozen=True)
class UserSettings:
    """A user's /settings: defaults applied where a prompt is silent."""

    aspect: str | None = None
    variation: VariationStrength = VariationStrength.STRONG
    stylize: int | None = None
    raw: bool = False
    mode: SpeedMode = SpeedMode.FAST

    def to_dict(self) -> dict[str, Any]:
        return {
            "aspect": self.aspect,
            "variation": str(self.variation),
            "stylize": self.stylize,
            "raw": self.raw,
            "mode": str(self.mode),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> UserSettings:
        data = data or {}
        return cls(
            aspect=data.get("aspect"),
            variation=VariationStrength(data.get("variation", VariationStrength.STRONG)),
            stylize=data.get("stylize"),
            raw=bool(data.get("raw", False)),
            mode=SpeedMode(data.get("mode", SpeedMode.FAST)),
        )


@dataclass(frozen=True)
class JobSpec:
    """What the bot asks to enqueue: one job, before it has an id."""

    kind: JobKind
    request: GenerationRequest
    cost: int
    parent_job_id: int | None = None
    parent_index: int | None = None
    strength: float | None = None
    input_images: tuple[str, ...] = ()
    # Stored blobs of the request's ``style_refs`` and ``character_refs``, in their order.
    style_images: tuple[str, ...] = ()
    character_images: tuple[str, ...] = ()
    edit: Edit | None = None
    # The command text as typed, kept on the job for its record (None for button jobs).
    prompt_text: str | None = None

    def reference_images(self) -> dict[str, list[str]] | None:
        """The ``jobs.reference_images`` column: reference blobs by role, None without any."""
        if not self.style_images and not self.character_images:
            return None
        return {"style": list(self.style_images), "character": list(self.character_images)}
