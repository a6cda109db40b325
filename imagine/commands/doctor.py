"""``imagine doctor``: a checklist of configuration, database, migrations, models (where each
comes from, whether it is there, its family) and token.

Every check runs offline (nothing is sent to Discord or the model hub) and says what to do when
it fails. Exit status 0 when nothing failed, 1 otherwise; warnings do not fail.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gpu_worker.errors import ModelLoadError
from gpu_worker.extras import Extras
from gpu_worker.families.detect import detect
from gpu_worker.sources import cached, hub_cache, is_modelscope, offline, parse
from imagine.settings import DISCORD_API_BASE, Settings
from storage.families import LABELS

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    status: str
    name: str
    detail: str

    def line(self) -> str:
        """``[ok]   name: detail``."""
        return f"[{self.status}]".ljust(7) + f"{self.name}: {self.detail}"


def check_token(settings: Settings) -> Check:
    """A Discord token is configured (its value is never printed)."""
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if not token:
        return Check(FAIL, "Discord token", "missing; set IMAGINE_DISCORD_TOKEN (or DISCORD_TOKEN)")
    if token.count(".") != 2 and settings.discord_api_base == DISCORD_API_BASE:
        return Check(
            WARN,
            "Discord token",
            f"set ({len(token)} characters) but not shaped like a bot token (three dot-separated "
            "parts); copy it again from the Developer Portal's Bot page",
        )
    return Check(OK, "Discord token", f"set ({len(token)} characters)")


def check_endpoints(settings: Settings) -> Check:
    """Which Discord the bot will talk to."""
    if settings.discord_api_base == DISCORD_API_BASE:
        return Check(OK, "Discord API", settings.discord_api_base)
    return Check(
        WARN,
        "Discord API",
        f"{settings.discord_api_base} and gateway {settings.discord_gateway_url} "
        "(not discord.com: a Discord-compatible server)",
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_database(settings: Settings) -> list[Check]:
    """The database answers, and its schema is at the newest migration."""
    from storage.db import Database
    from storage.migrate import current_revision, head_revision

    url = settings.database
    shown = _safe_url(url)

    async def ping() -> None:
        database = await Database.open(url)
        await database.close()

    if settings.is_sqlite and not settings.data_dir.exists():
        return [
            Check(
                WARN,
                "database",
                f"{shown} does not exist yet; `imagine run` or `imagine migrate` creates it",
            )
        ]
    try:
        asyncio.run(ping())
    except Exception as exc:
        return [Check(FAIL, "database", f"{shown} is unreachable: {type(exc).__name__}: {exc}")]
    checks = [Check(OK, "database", f"{shown} reachable")]
    try:
        current, head = current_revision(url), head_revision()
    except Exception as exc:
        return [*checks, Check(FAIL, "migrations", f"cannot read the schema version: {exc}")]
    if current == head:
        checks.append(Check(OK, "migrations", f"at the newest revision ({head})"))
    elif current is None:
        checks.append(
            Check(FAIL, "migrations", f"never applied; run `imagine migrate` (newest is {head})")
        )
    else:
        checks.append(
            Check(FAIL, "migrations", f"at {current}, newest is {head}; run `imagine migrate`")
        )
    return checks


def check_data_dir(settings: Settings) -> Check:
    """The image store's directory can be written."""
    root = settings.data_dir
    existing = next((p for p in (root, *root.resolve().parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return Check(FAIL, "data dir", f"{root} cannot be created or written")
    if not root.exists():
        return Check(OK, "data dir", f"{root} will be created on first use")
    return Check(OK, "data dir", f"{root.resolve()} is writable")


def check_image_store(settings: Settings) -> Check:
    """The image store: files under the data dir, or a bucket that answers to our credentials."""
    from storage.errors import ImageStoreError
    from storage.s3 import S3ImageStore
    from storage.stores import open_image_store

    if settings.image_store == "file":
        return Check(OK, "image store", f"files under {settings.data_dir / 'images'}")

    async def probe() -> str:
        store = await open_image_store(settings.image_store_config)
        await store.close()
        return store.where if isinstance(store, S3ImageStore) else settings.image_store

    try:
        where = asyncio.run(probe())
    except ImageStoreError as exc:
        return Check(FAIL, "image store", str(exc))
    return Check(OK, "image store", f"{where}: bucket found, credentials accepted")


def _not_cached_offline() -> str:
    return (
        f"is not in the Hugging Face cache ({hub_cache()}) and downloads are off "
        "(HF_HUB_OFFLINE); download it there first or unset HF_HUB_OFFLINE"
    )


def _model_source(name: str, source: str) -> Check:
    label = f"model {name}" if name != "default" else "model"
    if is_modelscope(source):
        return _modelscope_source(label, source)
    path = Path(source).expanduser()
    if path.exists():
        if (path / "model_index.json").is_file():
            return Check(OK, label, f"{path} (a local diffusers model)")
        return Check(
            FAIL,
            label,
            f"{path} exists but has no model_index.json; point it at a diffusers model directory",
        )
    if source.startswith((".", "/", "~")):
        return Check(FAIL, label, f"{path} does not exist")
    via = f" via {os.environ['HF_ENDPOINT']}" if os.environ.get("HF_ENDPOINT") else ""
    local = cached(source)
    if local is not None and (Path(local) / "model_index.json").is_file():
        return Check(OK, label, f"{source} (Hugging Face hub{via}, in the local hub cache)")
    if offline():
        return Check(FAIL, label, f"{source} (Hugging Face hub) {_not_cached_offline()}")
    return Check(
        WARN,
        label,
        f"{source} (Hugging Face hub{via}) is not cached yet; the first worker start downloads it",
    )


def _modelscope_source(label: str, source: str) -> Check:
    try:
        parsed = parse(source)
    except ModelLoadError as exc:
        return Check(FAIL, label, str(exc))
    if importlib.util.find_spec("modelscope") is None:
        return Check(
            FAIL,
            label,
            f"{source} (ModelScope) needs the modelscope package: install the worker extra",
        )
    local = cached(source)
    if local is not None:
        return Check(OK, label, f"{source} ({parsed.describe()}, in the ModelScope cache: {local})")
    return Check(
        WARN,
        label,
        f"{source} ({parsed.describe()}) is not in the ModelScope cache yet; the first worker "
        "start downloads it (or set HF_HUB_OFFLINE=1 to refuse downloads)",
    )


def _extra_sources(settings: Settings) -> Iterator[tuple[str, str]]:
    for name, profile in sorted(settings.profiles.items()):
        for key in ("unet", "lora"):
            if profile.get(key):
                yield f"profile {name} {key}", str(profile[key])
    for name, style in sorted(settings.loras.items()):
        if style.get("path"):
            yield f"LoRA {name}", str(style["path"])
    for kind, source in sorted(settings.controlnets.items()):
        yield f"controlnet {kind}", source
    for key in ("depth_estimator", "ip_adapter", "ip_adapter_image_encoder", "translation_model"):
        value = getattr(settings, key)
        if value:
            yield key, str(value)


def _extra_source(label: str, source: str) -> Check:
    if is_modelscope(source):
        return _modelscope_source(label, source)
    path = Path(source).expanduser()
    if path.exists():
        return Check(OK, label, f"{path} (a local path)")
    if source.startswith((".", "/", "~")):
        return Check(FAIL, label, f"{path} does not exist")
    local = cached(source)
    if local is not None:
        return Check(OK, label, f"{source} (Hugging Face hub, in the local hub cache: {local})")
    if offline():
        return Check(WARN, label, f"{source} (Hugging Face hub) {_not_cached_offline()}")
    return Check(
        WARN,
        label,
        f"{source} (Hugging Face hub) is not cached yet; the worker downloads it when a job "
        "first needs it",
    )


def check_extras(settings: Settings) -> Check:
    """The optional features' settings parse as the worker parses them at start."""
    try:
        Extras.from_settings(settings)
    except ValueError as exc:
        return Check(FAIL, "optional features", f"{exc}; the worker refuses to start")
    return Check(OK, "optional features", "settings are valid")


def _with_family(check: Check, settings: Settings, name: str, source: str) -> Check:
    """A model that is there says which family it paints with (configured, else detected)."""
    if check.status != OK:
        return check
    family = settings.model_families.get(name) or detect(source)
    return dataclasses.replace(check, detail=f"{check.detail}; family {LABELS[family]}")


def check_models(settings: Settings) -> Iterator[Check]:
    """Where each configured model comes from, whether it is there already, and its family."""
    models = [("default", settings.model), *sorted(settings.model_aliases.items())]
    for name, source in models:
        yield _with_family(_model_source(name, source), settings, name, source)
    for label, source in _extra_sources(settings):
        yield _extra_source(label, source)


def check_worker_extra() -> Check:
    """Whether this host can run a worker (torch and diffusers installed)."""
    missing = [
        m for m in ("torch", "diffusers", "transformers") if importlib.util.find_spec(m) is None
    ]
    if missing:
        return Check(
            WARN,
            "worker",
            f"{', '.join(missing)} not installed: this host can run `imagine bot` only",
        )
    return Check(OK, "worker", "torch, diffusers and transformers installed")


def checklist(settings: Settings) -> list[Check]:
    """Every check, in the order they are printed."""
    return [
        Check(OK, "configuration", "loaded"),
        check_token(settings),
        check_endpoints(settings),
        check_data_dir(settings),
        check_image_store(settings),
        *check_database(settings),
        *check_models(settings),
        check_extras(settings),
        check_worker_extra(),
    ]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the checklist; exit 1 when any check failed."""
    checks = checklist(settings)
    for check in checks:
        print(check.line())
    failed = sum(check.status == FAIL for check in checks)
    print(f"{failed} problem{'s' if failed != 1 else ''} found" if failed else "all good")
    return 1 if failed else 0
