"""Where model weights come from: a local directory or file, a Hugging Face hub id, or ModelScope.

Every model path in the configuration (the default model, aliases, profiles, LoRA styles,
ControlNets, the IP-Adapter and its image encoder, the translation model) goes through
``resolve`` before ``from_pretrained``, so each accepts the same three forms:

- a local path (``/models/sdxl``, ``./lora.safetensors``, ``~/x``): used as it is;
- a hub id ``ORG/NAME[/PATH]`` (``stabilityai/stable-diffusion-xl-base-1.0``): the Hugging Face
  repository ``ORG/NAME``; ``PATH`` names a file or folder inside it
  (``h94/IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors``, ``stabilityai/sdxl-turbo/unet``).
  A whole repository is handed to ``from_pretrained``, which downloads into the Hugging Face
  cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, default ``~/.cache/huggingface/hub``); a
  ``PATH`` is looked up in that cache first and otherwise downloaded alone with
  ``huggingface_hub.snapshot_download``. ``HF_ENDPOINT`` points downloads at a mirror. With
  ``HF_HUB_OFFLINE=1`` a hub id resolves to its cached snapshot (``refs/main``), and one that
  is not cached is refused naming the id and the cache;
- ``modelscope:ORG/NAME[@REVISION][/PATH]``: the ModelScope repository ``ORG/NAME`` (at
  ``REVISION``, default ``master``), fetched with ``modelscope.snapshot_download`` into the
  ModelScope cache (``MODELSCOPE_CACHE``, default ``~/.cache/modelscope``, laid out as
  ``models/ORG--NAME/snapshots/REVISION/``); ``PATH`` names a file or folder inside it (a LoRA
  file, a distilled UNet folder). The cache is looked at first, so a cached model needs no
  network; with ``HF_HUB_OFFLINE=1`` nothing is downloaded from either source.

The ``modelscope`` package belongs to the worker extra and is imported only when a ModelScope
source is resolved (it imports torch).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_worker.errors import ModelLoadError, short_reason

_HUB_FOLDER = "models--"
MODELSCOPE_PREFIX = "modelscope:"
_MODELSCOPE = re.compile(
    r"modelscope:(?P<repo>[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)"
    r"(?:@(?P<revision>[A-Za-z0-9_.-]+))?(?:/(?P<path>.+))?"
)


@dataclass(frozen=True)
class Source:
    """A configured model location, parsed."""

    text: str
    kind: str  # "local", "hub" or "modelscope"
    repo: str | None = None
    revision: str | None = None
    path: str | None = None

    def describe(self) -> str:
        """Where it comes from, in words."""
        if self.kind == "local":
            return "a local path"
        if self.kind == "hub":
            endpoint = os.environ.get("HF_ENDPOINT")
            return f"the Hugging Face hub{f' via {endpoint}' if endpoint else ''}"
        return f"ModelScope ({self.repo} at {self.revision or 'master'})"


def is_modelscope(source: str | Path) -> bool:
    """True for a ``modelscope:`` source."""
    return str(source).startswith(MODELSCOPE_PREFIX)


def parse(source: str | Path) -> Source:
    """Parse a configured source; raises ModelLoadError for a malformed ``modelscope:`` one."""
    text = str(source)
    if is_modelscope(text):
        match = _MODELSCOPE.fullmatch(text)
        if match is None:
            raise ModelLoadError(
                f"model source {text!r} is not a ModelScope id; write "
                "modelscope:ORG/NAME, modelscope:ORG/NAME@REVISION or "
                "modelscope:ORG/NAME@REVISION/PATH/IN/REPO"
            )
        return Source(text, "modelscope", match["repo"], match["revision"], match["path"])
    if text.startswith((".", "/", "~")) or Path(text).expanduser().exists():
        return Source(text, "local")
    parts = [part for part in text.split("/") if part]
    if len(parts) > 2:
        return Source(text, "hub", "/".join(parts[:2]), path="/".join(parts[2:]))
    return Source(text, "hub", "/".join(parts))


def offline() -> bool:
    """Whether downloads are off (``HF_HUB_OFFLINE``, honoured for both sources)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve(source: str | Path, *, allow_download: bool | None = None) -> str:
    """What to hand ``from_pretrained`` (or open) for ``source``: for ModelScope a cache path.

    ``allow_download`` defaults to "unless ``HF_HUB_OFFLINE``". Local paths are returned as they
    are, and so is a whole hub repository while downloads are on (diffusers and transformers
    fetch what they need of it); otherwise a hub id becomes its path in the hub cache.
    """
    parsed = parse(source)
    if parsed.kind == "local":
        return str(Path(parsed.text).expanduser())
    if allow_download is None:
        allow_download = not offline()
    if parsed.kind == "hub":
        return _hub(parsed, allow_download)
    root = _modelscope_snapshot(parsed, allow_download)
    if parsed.path is None:
        return root
    inside = Path(root) / parsed.path
    if not inside.exists():
        raise ModelLoadError(
            f"cannot load model {parsed.text!r} from ModelScope: the repository has no "
            f"{parsed.path!r} (snapshot at {root})"
        )
    return str(inside)


def resolve_path(source: Path) -> Path:
    """``resolve`` for settings held as paths (LoRA and IP-Adapter files, distilled UNets)."""
    return Path(resolve(source))


def names_no_file(source: str | Path) -> bool:
    """True for a hub or ModelScope source that names a whole repository, not a file in it."""
    parsed = parse(source)
    return parsed.kind != "local" and parsed.path is None


def cached(source: str | Path) -> str | None:
    """The local copy of ``source`` when there is one (never downloads), else None."""
    parsed = parse(source)
    if parsed.kind == "local":
        path = Path(parsed.text).expanduser()
        return str(path) if path.exists() else None
    if parsed.kind == "modelscope":
        if importlib.util.find_spec("modelscope") is None:
            return None
        try:
            return resolve(parsed.text, allow_download=False)
        except ModelLoadError:
            return None
    root = _hub_snapshot(parsed)
    if root is None:
        return None
    inside = root / parsed.path if parsed.path else root
    return str(inside) if inside.exists() else None


def hub_cache() -> Path:
    """The Hugging Face hub cache, by huggingface_hub's own rule (read at each call)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        configured = os.environ.get(name)
        if configured:
            return Path(os.path.expandvars(configured)).expanduser()
    home = os.environ.get("HF_HOME") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def _hub_snapshot(source: Source) -> Path | None:
    """The cached snapshot of a hub repository at ``main`` (``refs/main``), if there is one."""
    folder = hub_cache() / (_HUB_FOLDER + str(source.repo).replace("/", "--"))
    try:
        commit = (folder / "refs" / "main").read_text().strip()
    except OSError:
        return None
    snapshot = folder / "snapshots" / commit
    return snapshot if commit and snapshot.is_dir() else None


def _hub(source: Source, allow_download: bool) -> str:
    """A hub source as ``from_pretrained`` or ``open`` takes it; see the module docstring."""
    if source.path is None and allow_download:
        return source.text
    local = cached(source.text)
    if local is not None:
        return local
    cache = hub_cache()
    if not allow_download:
        snapshot = _hub_snapshot(source)
        where = (
            f"its cached snapshot ({snapshot}) has no {source.path!r}"
            if snapshot is not None
            else f"it is not in the Hugging Face cache ({cache})"
        )
        raise ModelLoadError(
            f"cannot load model {source.text!r} from Hugging Face repository {source.repo}: "
            f"{where} and downloads are off (HF_HUB_OFFLINE); download it there first or "
            "unset HF_HUB_OFFLINE"
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError:
        raise ModelLoadError(
            f"cannot load model {source.text!r}: the huggingface_hub package is not installed; "
            "install the worker extra (pip install 'imagine[worker]')"
        ) from None
    path = str(source.path)
    try:
        root = snapshot_download(
            str(source.repo), cache_dir=cache, allow_patterns=[path, f"{path}/*"]
        )
    except (OSError, ValueError, EntryNotFoundError) as exc:
        reason = short_reason(exc)
        raise ModelLoadError(
            f"cannot load model {source.text!r}: download of {path!r} from Hugging Face "
            f"repository {source.repo} ({source.describe()}) failed: {reason}; check the id, "
            "network access (HF_ENDPOINT for a mirror) and HF_TOKEN for gated models"
        ) from exc
    inside = Path(root) / path
    if not inside.exists():
        raise ModelLoadError(
            f"cannot load model {source.text!r}: Hugging Face repository {source.repo} has no "
            f"{path!r}"
        )
    return str(inside)


def _modelscope_snapshot(source: Source, allow_download: bool) -> str:
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise ModelLoadError(
            f"cannot load model {source.text!r}: the modelscope package is not installed; "
            "install the worker extra (pip install 'imagine[worker]') or modelscope"
        ) from None
    from modelscope_hub.errors import CacheNotFound, HubError

    download: Any = snapshot_download
    # modelscope reads MODELSCOPE_CACHE once per process for its own config but again for
    # each call elsewhere; passing the directory keeps every lookup in the same place.
    cache = _cache_root()
    try:
        # The cache first: a cached model loads with no network at all.
        return str(
            download(source.repo, revision=source.revision, cache_dir=cache, local_files_only=True)
        )
    except CacheNotFound:
        if not allow_download:
            raise ModelLoadError(
                f"cannot load model {source.text!r}: ModelScope repository {source.repo} "
                f"(revision {source.revision or 'master'}) is not in the ModelScope cache "
                f"({cache}) and downloads are off (HF_HUB_OFFLINE); download it "
                "there first or unset HF_HUB_OFFLINE"
            ) from None
    try:
        return str(download(source.repo, revision=source.revision, cache_dir=cache))
    except (HubError, OSError, ValueError) as exc:
        reason = short_reason(exc)
        raise ModelLoadError(
            f"cannot load model {source.text!r}: ModelScope download of {source.repo} "
            f"failed: {reason}; check the id, network access to modelscope.cn and "
            "MODELSCOPE_API_TOKEN for private models"
        ) from exc


def _cache_root() -> str:
    """The ModelScope cache, by the package's own rule."""
    configured = os.environ.get("MODELSCOPE_CACHE")
    return str(
        Path(configured).expanduser() if configured else Path.home() / ".cache" / "modelscope"
    )
