"""The engine's optional features as configured: speed profiles, LoRA styles, ControlNets, an
IP-Adapter and a translation model. Configuration only (no torch): parsed and checked when the
worker starts, so a typo fails at start with one line and missing weights are reported once.

Profiles (setting ``profiles``, a table per profile, named after the speed mode that uses it):
- ``turbo`` (``--turbo`` and the turbo speed mode) and ``draft`` (``--draft``);
- ``model``: alias of the base model (default: the default model);
- ``unet``: a distilled UNet directory (SDXL-Lightning, SDXL-Turbo) that replaces the base UNet,
  or ``lora``: a distillation LoRA file (LCM-LoRA) layered on the base UNet;
- ``scheduler``: ``euler_trailing`` (Euler, ``timestep_spacing="trailing"``, what Lightning
  and Turbo need; the default), ``lcm`` (``LCMScheduler``), or one of the base schedulers;
- ``steps`` (1..100, default 4) and ``guidance`` (0..20, default 0; distilled models want 0 to
  ~1.5, and at 1 or below classifier-free guidance is off);
- ``size``: the side, in pixels, to render at instead of the model's native one (draft: 512 on
  SDXL gives a quarter of the pixels); a multiple of 8.

LoRA styles (setting ``loras``: name -> ``{path, trigger, weight}``; setting ``lora_dir``: every
``*.safetensors`` in it is a style named after the file, trigger empty, weight 1). A named entry
wins over a file of the same name. Names are lower case ``a-z 0-9 _ -``, at most 32 characters.

Every weights location takes the three forms of ``gpu_worker.sources`` (local path, hub id,
``modelscope:``). A hub or ModelScope repository given whole is, for a UNet, a repository whose
top holds the UNet's ``config.json``; for a LoRA, the repository's LoRA file as diffusers picks
it (``pytorch_lora_weights.safetensors``, else its one top-level ``.safetensors``); the
IP-Adapter's weights must be named as a file inside the repository
(``h94/IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors``). Only local paths are checked here:
a remote one is fetched when a job first needs it, and one that cannot be fetched fails that
attempt as a load error naming the id and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from gpu_worker.errors import ModelLoadError
from gpu_worker.sources import is_modelscope, names_no_file, parse

PROFILE_NAMES = ("turbo", "draft")
PROFILE_SCHEDULERS = ("euler_trailing", "lcm", "dpmpp_2m_karras", "euler_a")
CONTROL_KINDS = ("canny", "depth")
MAX_LORA_WEIGHT = 2.0
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_PROFILE_KEYS = ("model", "unet", "lora", "scheduler", "steps", "guidance", "size")
_LORA_KEYS = ("path", "trigger", "weight")


class ExtrasSource(Protocol):
    """The settings the optional features are configured from (``imagine.settings.Settings``)."""

    @property
    def profiles(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def loras(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def lora_dir(self) -> Path | None: ...
    @property
    def controlnets(self) -> Mapping[str, str]: ...
    @property
    def depth_estimator(self) -> str | None: ...
    @property
    def ip_adapter(self) -> str | None: ...
    @property
    def ip_adapter_image_encoder(self) -> str | None: ...
    @property
    def translation_model(self) -> str | None: ...


@dataclass(frozen=True)
class Profile:
    """A named way to paint: base model, optional distilled UNet or LoRA, sampler settings."""

    name: str
    model: str | None = None
    unet: Path | None = None
    lora: Path | None = None
    scheduler: str = "euler_trailing"
    steps: int = 4
    guidance: float = 0.0
    size: int | None = None

    def missing(self) -> str | None:
        """Why this worker cannot paint with the profile (missing weights), or None."""
        if self.unet is not None and _local_missing(str(self.unet), "config.json"):
            return f"profile {self.name}: no UNet at {self.unet} (expected a config.json there)"
        if self.lora is not None and _local_missing(str(self.lora), None):
            return f"profile {self.name}: no LoRA file at {self.lora}"
        return None

    def describe(self) -> dict[str, Any]:
        """What the bot may show about the profile."""
        return {"steps": self.steps, "guidance": self.guidance, "size": self.size}


@dataclass(frozen=True)
class LoraStyle:
    """A LoRA style users pick with ``--lora NAME[:weight]``."""

    name: str
    path: Path
    trigger: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class Extras:
    """Every optional feature this worker is configured with."""

    profiles: Mapping[str, Profile] = field(default_factory=dict)
    loras: Mapping[str, LoraStyle] = field(default_factory=dict)
    controlnets: Mapping[str, str] = field(default_factory=dict)
    depth_estimator: str | None = None
    ip_adapter: str | None = None
    ip_adapter_image_encoder: str | None = None
    translation_model: str | None = None

    @classmethod
    def from_settings(cls, settings: ExtrasSource) -> Extras:
        """Parse and check the configuration; raises ValueError naming the bad entry."""
        profiles = {name: _profile(name, raw) for name, raw in settings.profiles.items()}
        loras = _scan(settings.lora_dir)
        loras.update({name: _lora(name, raw) for name, raw in settings.loras.items()})
        for kind in settings.controlnets:
            if kind not in CONTROL_KINDS:
                raise ValueError(
                    f"controlnets: unknown kind {kind!r}; use {' or '.join(CONTROL_KINDS)}"
                )
        if "depth" in settings.controlnets and not settings.depth_estimator:
            raise ValueError(
                "controlnets.depth needs depth_estimator (a transformers depth-estimation "
                "model directory or hub id) to make depth maps"
            )
        if bool(settings.ip_adapter) != bool(settings.ip_adapter_image_encoder):
            raise ValueError(
                "ip_adapter and ip_adapter_image_encoder go together: set both (weights file "
                "and image encoder directory) or neither"
            )
        if settings.ip_adapter:
            _check_weights_file(settings.ip_adapter)
        return cls(
            profiles=profiles,
            loras=loras,
            controlnets=dict(settings.controlnets),
            depth_estimator=settings.depth_estimator,
            ip_adapter=settings.ip_adapter,
            ip_adapter_image_encoder=settings.ip_adapter_image_encoder,
            translation_model=settings.translation_model,
        )

    def problems(self) -> list[str]:
        """One line for each configured feature whose weights are missing on this host."""
        lines = [p for p in (profile.missing() for profile in self.profiles.values()) if p]
        lines += [
            f"LoRA style {style.name}: no file at {style.path}"
            for style in self.loras.values()
            if _local_missing(str(style.path), None)
        ]
        for kind, source in self.controlnets.items():
            if _local_missing(source, "config.json"):
                lines.append(f"controlnet {kind}: no ControlNet at {source}")
        if self.depth_estimator and _local_missing(self.depth_estimator, "config.json"):
            lines.append(f"depth_estimator: no model at {self.depth_estimator}")
        if self.ip_adapter and _local_missing(self.ip_adapter, None):
            lines.append(f"ip_adapter: no weights file at {self.ip_adapter}")
        encoder = self.ip_adapter_image_encoder
        if encoder and _local_missing(encoder, "config.json"):
            lines.append(f"ip_adapter_image_encoder: no image encoder at {encoder}")
        if self.translation_model and _local_missing(self.translation_model, "config.json"):
            lines.append(f"translation_model: no model at {self.translation_model}")
        return lines

    def available(self) -> Extras:
        """The same configuration without the features whose weights are missing here."""
        depth_ok = not (
            self.depth_estimator and _local_missing(self.depth_estimator, "config.json")
        )
        ip_ok = bool(self.ip_adapter) and not (
            _local_missing(str(self.ip_adapter), None)
            or _local_missing(str(self.ip_adapter_image_encoder), "config.json")
        )
        translation_ok = bool(self.translation_model) and not _local_missing(
            str(self.translation_model), "config.json"
        )
        return replace(
            self,
            profiles={n: p for n, p in self.profiles.items() if p.missing() is None},
            loras={n: s for n, s in self.loras.items() if not _local_missing(str(s.path), None)},
            controlnets={
                kind: source
                for kind, source in self.controlnets.items()
                if not _local_missing(source, "config.json") and (kind != "depth" or depth_ok)
            },
            ip_adapter=self.ip_adapter if ip_ok else None,
            ip_adapter_image_encoder=self.ip_adapter_image_encoder if ip_ok else None,
            translation_model=self.translation_model if translation_ok else None,
        )

    def capabilities(self) -> dict[str, Any]:
        """What a worker registers, so the bot can check and list names (JSON-ready)."""
        return {
            "profiles": {name: p.describe() for name, p in sorted(self.profiles.items())},
            "loras": {
                name: {"trigger": s.trigger, "weight": s.weight}
                for name, s in sorted(self.loras.items())
            },
            "controlnets": sorted(self.controlnets),
            "ip_adapter": self.ip_adapter is not None,
            "translation": self.translation_model is not None,
        }


def _local_missing(source: str, marker: str | None) -> bool:
    """True when ``source`` names a local path (not a hub id or ModelScope) that is not there."""
    if is_modelscope(source):
        return False
    path = Path(source).expanduser()
    if not (source.startswith((".", "/", "~")) or path.exists()):
        return False
    if marker is None:
        return not path.is_file()
    return not (path / marker).is_file()


def _location(raw: Any) -> Path:
    """A configured weights location; a local one is made absolute, so that ``./x`` stays a
    local path when held as a ``Path`` (which drops the ``./``) even where nothing is there."""
    text = str(raw)
    if is_modelscope(text) or parse(text).kind != "local":
        return Path(text)
    return Path(text).expanduser().absolute()


def _check_weights_file(source: str) -> None:
    try:
        whole_repository = names_no_file(source)
    except ModelLoadError as exc:
        raise ValueError(f"ip_adapter: {exc}") from None
    if whole_repository:
        raise ValueError(
            f"ip_adapter {source!r} names a whole repository; name the weights file in it: "
            "ORG/NAME/PATH/FILE.safetensors for the Hugging Face hub "
            "(h94/IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors) or "
            "modelscope:ORG/NAME[@REVISION]/PATH/FILE.safetensors"
        )


def _check_keys(what: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")


def _profile(name: str, raw: Mapping[str, Any]) -> Profile:
    what = f"profiles.{name}"
    if name not in PROFILE_NAMES:
        raise ValueError(
            f"profiles: unknown profile {name!r}; profiles are named after the speed mode "
            f"that uses them: {', '.join(PROFILE_NAMES)}"
        )
    if not isinstance(raw, Mapping):
        raise ValueError(f"{what} must be a table, got {raw!r}")
    _check_keys(what, raw, _PROFILE_KEYS)
    if raw.get("unet") and raw.get("lora"):
        raise ValueError(f"{what}: give unet (a distilled UNet) or lora, not both")
    scheduler = str(raw.get("scheduler", "euler_trailing"))
    if scheduler not in PROFILE_SCHEDULERS:
        raise ValueError(
            f"{what}.scheduler: unknown {scheduler!r}; "
            f"choose one of {', '.join(PROFILE_SCHEDULERS)}"
        )
    steps = raw.get("steps", 4)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100:
        raise ValueError(f"{what}.steps must be a whole number 1..100, got {steps!r}")
    guidance = raw.get("guidance", 0.0)
    if not isinstance(guidance, int | float) or isinstance(guidance, bool):
        raise ValueError(f"{what}.guidance must be a number 0..20, got {guidance!r}")
    if not 0 <= guidance <= 20:
        raise ValueError(f"{what}.guidance must be a number 0..20, got {guidance!r}")
    size = raw.get("size")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or size < 8 or size % 8
    ):
        raise ValueError(f"{what}.size must be a multiple of 8 (pixels), got {size!r}")
    return Profile(
        name=name,
        model=str(raw["model"]) if raw.get("model") else None,
        unet=_location(raw["unet"]) if raw.get("unet") else None,
        lora=_location(raw["lora"]) if raw.get("lora") else None,
        scheduler=scheduler,
        steps=steps,
        guidance=float(guidance),
        size=size,
    )


def _lora(name: str, raw: Mapping[str, Any]) -> LoraStyle:
    what = f"loras.{name}"
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"loras: bad style name {name!r}; use lower case a-z, 0-9, _ and -, at most 32"
        )
    if not isinstance(raw, Mapping) or not raw.get("path"):
        raise ValueError(f"{what} needs a path (a LoRA .safetensors file)")
    _check_keys(what, raw, _LORA_KEYS)
    weight = raw.get("weight", 1.0)
    if not isinstance(weight, int | float) or isinstance(weight, bool):
        raise ValueError(f"{what}.weight must be a number 0..2, got {weight!r}")
    if not 0 <= weight <= MAX_LORA_WEIGHT:
        raise ValueError(f"{what}.weight must be a number 0..2, got {weight!r}")
    return LoraStyle(
        name=name,
        path=_location(raw["path"]),
        trigger=str(raw.get("trigger", "")).strip(),
        weight=float(weight),
    )


def _scan(directory: Path | None) -> dict[str, LoraStyle]:
    """Styles from the ``*.safetensors`` files of ``lora_dir``, named after the files."""
    if directory is None:
        return {}
    directory = directory.expanduser()
    if not directory.is_dir():
        raise ValueError(f"lora_dir {directory} is not a directory")
    styles: dict[str, LoraStyle] = {}
    for path in sorted(directory.glob("*.safetensors")):
        name = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")[:32]
        if _NAME.fullmatch(name):
            styles[name] = LoraStyle(name=name, path=path)
    return styles
