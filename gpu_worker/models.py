"""The model registry: which SDXL checkpoints the server has, loaded once and shared.

``settings.model`` is the default (a hub id or a local directory, loaded with
``from_pretrained``); ``settings.model_aliases`` maps names used by ``--model NAME``, ``--v`` and
``--niji`` to more sources, each of a family (``gpu_worker.families``: SDXL or Stable Cascade),
detected from its ``model_index.json`` or set in ``settings.model_families``. A model is loaded
on first use and kept; its txt2img pipeline owns the
components and the img2img and inpainting pipelines are built from it with ``from_pipe``, so they
add no weights.

Schedulers (``settings.scheduler``):
- ``dpmpp_2m_karras`` (default): DPM-Solver++ second order multistep with Karras sigmas; sharp
  results in 20-30 steps.
- ``euler_a``: Euler ancestral; more varied, stochastic at every step (seeded per image, so still
  reproducible).

Device and dtype: CUDA when available, else CPU (``settings.device`` overrides). fp16 on CUDA,
fp32 on CPU (``settings.dtype`` overrides). The fast-path settings (VAE precision, channels-last,
fused projections, attention kernel, ``torch.compile``, warm-up and size buckets) are checked
against the device before any weight is loaded and applied after (``gpu_worker.fastpath``); in
fp16 the SDXL VAE stays in fp32 when its config asks for it (``force_upcast``), so no black
images. ``settings.cpu_offload`` keeps only the running component on the card (cards under
~12 GB).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diffusers
import torch
from compel import Compel, ReturnedEmbeddingsType
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as _transformers_logging

from gpu_worker.config import EngineSettings
from gpu_worker.errors import ModelLoadError, UnknownModel
from gpu_worker.extras import Extras
from gpu_worker.families.detect import check_family, detect
from gpu_worker.fastpath import FastPath
from gpu_worker.sources import resolve

log = logging.getLogger(__name__)

# diffusers builds its classes dynamically and type checkers only see import shims, so the
# pipelines are typed as Any here.
_diffusers: Any = diffusers
_sdpa: Any = AttnProcessor2_0
transformers_logging: Any = _transformers_logging
Pipeline = Any

DEFAULT_ALIAS = "default"
SCHEDULERS = ("dpmpp_2m_karras", "euler_a")


def pick_device(requested: str | None) -> torch.device:
    """The configured device, else CUDA when present, else CPU."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ModelLoadError(
                f"device {requested!r} is not a torch device ({exc}); use cpu, cuda or cuda:N"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(
                f"device {requested!r} was configured but CUDA is not available in this torch "
                f"build ({torch.__version__}); install a CUDA build or set IMAGINE_DEVICE=cpu"
            )
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(requested: str | None, device: torch.device) -> torch.dtype:
    """The configured dtype, else fp16 on CUDA and fp32 elsewhere."""
    if requested:
        return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[
            requested
        ]
    return torch.float16 if device.type == "cuda" else torch.float32


def make_scheduler(name: str, config: Any) -> Any:
    """A scheduler of the named kind, from a model's scheduler config."""
    if name == "dpmpp_2m_karras":
        return _diffusers.DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
        )
    if name == "euler_a":
        return _diffusers.EulerAncestralDiscreteScheduler.from_config(config)
    raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")


@dataclass
class LoadedModel:
    """One model's pipelines and prompt encoders, sharing a single set of components."""

    name: str
    source: str
    txt2img: Pipeline
    device: torch.device
    dtype: torch.dtype
    fast: FastPath | None = None
    vae_dtype: torch.dtype | None = None
    _img2img: Pipeline | None = field(default=None, repr=False)
    _inpaint: Pipeline | None = field(default=None, repr=False)
    _encoders: tuple[Compel, Compel] | None = field(default=None, repr=False)

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for SDXL)."""
        return int(self.txt2img.vae_scale_factor)

    @property
    def native_resolution(self) -> int:
        """The side, in pixels, the model was trained at: UNet sample size x VAE factor."""
        sample = self.txt2img.unet.config.sample_size
        side = sample if isinstance(sample, int) else max(sample)
        return int(side) * self.vae_scale_factor

    @property
    def img2img(self) -> Pipeline:
        """The img2img pipeline over the same components."""
        if self._img2img is None:
            with _quiet():
                self._img2img = _diffusers.StableDiffusionXLImg2ImgPipeline.from_pipe(
                    self.txt2img, dtype=self.dtype
                )
                self._keep_vae_dtype()
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    @property
    def inpaint(self) -> Pipeline:
        """The inpainting pipeline over the same components (zoom out and pan)."""
        if self._inpaint is None:
            with _quiet():
                self._inpaint = _diffusers.StableDiffusionXLInpaintPipeline.from_pipe(
                    self.txt2img, dtype=self.dtype
                )
                self._keep_vae_dtype()
            self._inpaint.set_progress_bar_config(disable=True)
        return self._inpaint

    def _keep_vae_dtype(self) -> None:
        # from_pipe casts every shared component to the model dtype, the VAE included.
        if self.vae_dtype is not None and self.vae_dtype != self.dtype:
            self.txt2img.vae.to(dtype=self.vae_dtype)

    @property
    def encoders(self) -> tuple[Compel, Compel]:
        """Compel encoders for SDXL's two text encoders (the second also gives pooled output)."""
        if self._encoders is None:
            pipe = self.txt2img
            common: dict[str, Any] = {
                "returned_embeddings_type": (
                    ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
                ),
                # Long prompts are encoded in 77-token chunks instead of being cut.
                "truncate_long_prompts": False,
            }
            first = Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, **common)
            second = Compel(
                tokenizer=pipe.tokenizer_2,
                text_encoder=pipe.text_encoder_2,
                requires_pooled=True,
                **common,
            )
            self._encoders = (first, second)
        return self._encoders


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence diffusers' warning that ``from_pipe`` re-casts modules already in that dtype."""
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


class ModelRegistry:
    """Loads models by alias on first use and keeps them; safe to call from several threads."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self.upscaler_model = settings.upscaler_model
        self._sources = {DEFAULT_ALIAS: settings.model, **settings.model_aliases}
        # Profiles, LoRA styles, ControlNets...: checked now, so a typo fails at start.
        self.extras = Extras.from_settings(settings)
        self._loaded: dict[str, LoadedModel] = {}
        self._others: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._families: dict[str, str] = {}
        for alias, family in settings.model_families.items():
            where = f"model_families[{alias!r}]"
            if alias not in self._sources:
                raise ModelLoadError(
                    f"{where}: there is no model {alias!r}; models: {', '.join(self.names())}"
                )
            self._families[alias] = check_family(family, where)

    def names(self) -> list[str]:
        """Alias names the server offers (``default`` is the configured default model)."""
        return sorted(self._sources)

    def source(self, name: str | None) -> str:
        """The hub id or directory behind an alias (None: the default model)."""
        key = name or DEFAULT_ALIAS
        if key not in self._sources:
            raise UnknownModel(
                f"model {key!r} is not configured on this server; available: "
                f"{', '.join(self.names())}"
            )
        return self._sources[key]

    def family(self, name: str | None = None) -> str:
        """The family of an alias's model (as configured, else from its model_index.json)."""
        key = name or DEFAULT_ALIAS
        source = self.source(key)
        if key not in self._families:
            self._families[key] = detect(source)
        return self._families[key]

    def families(self) -> dict[str, str]:
        """Alias -> family, for every model the server offers."""
        return {name: self.family(name) for name in self.names()}

    def device(self) -> torch.device:
        """The device models load on."""
        return pick_device(self._settings.device)

    def load_other(self, name: str | None, load: Callable[[str, str], Any]) -> Any:
        """A model of another family than SDXL, loaded once with ``load(alias, source)``."""
        key = name or DEFAULT_ALIAS
        source = self.source(key)
        with self._lock:
            if key not in self._others:
                log.info("loading %s model %s from %s", self.family(key), key, source)
                self._others[key] = load(key, source)
            return self._others[key]

    def get(self, name: str | None = None) -> LoadedModel:
        """The loaded model for an alias, loading it the first time."""
        key = name or DEFAULT_ALIAS
        source = self.source(key)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._load(key, source)
            return self._loaded[key]

    def _load(self, name: str, source: str) -> LoadedModel:
        settings = self._settings
        device = pick_device(settings.device)
        dtype = pick_dtype(settings.dtype, device)
        # Settings that cannot work on this device fail here, before minutes of loading.
        fast = FastPath.resolve(
            device,
            dtype,
            channels_last=settings.channels_last,
            fuse_qkv=settings.fuse_qkv,
            compile=settings.compile,
            compile_mode=settings.compile_mode,
            sdpa_backend=settings.sdpa_backend,
            vae_upcast=settings.vae_upcast,
            warmup=settings.warmup,
            warmup_steps=settings.warmup_steps,
            size_buckets=settings.size_buckets,
            cpu_offload=settings.cpu_offload,
            lora_adapters=bool(settings.loras or settings.lora_dir)
            or any(profile.get("lora") for profile in settings.profiles.values()),
        )
        log.info("loading model %s from %s on %s (%s)", name, source, device, dtype)
        # Download and loading bars are for terminals, not for a service's logs.
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        pipe = _from_pretrained(source, dtype)
        pipe.scheduler = make_scheduler(settings.scheduler, pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        if device.type == "cuda":
            pipe.unet.set_attn_processor(_sdpa())
            pipe.vae.set_attn_processor(_sdpa())
        if settings.cpu_offload and device.type == "cuda":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        with _quiet():
            notes = fast.apply(pipe)
        if fast.compile:
            notes.append(fast.compile_unet(pipe.unet))
        for note in notes:
            log.info("model %s: %s", name, note)
        return LoadedModel(
            name=name,
            source=source,
            txt2img=pipe,
            device=device,
            dtype=dtype,
            fast=fast,
            vae_dtype=pipe.vae.dtype,
        )


def _from_pretrained(configured: str, dtype: torch.dtype) -> Pipeline:
    source = resolve(configured)
    looks_local = source.startswith((".", "/", "~")) or Path(source).expanduser().exists()
    if looks_local:
        path = Path(source).expanduser()
        if not path.is_dir():
            raise ModelLoadError(
                f"cannot load model {source!r}: no such directory; set IMAGINE_MODEL to a "
                "diffusers SDXL model directory or a Hugging Face hub id"
            )
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"cannot load model {source!r}: the directory has no model_index.json, so it is "
                "not a diffusers pipeline; save one with save_pretrained or point to its root"
            )
    try:
        pipe = _diffusers.StableDiffusionXLPipeline.from_pretrained(
            source, dtype=dtype, use_safetensors=True, add_watermarker=False
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        hint = (
            "check the files in the directory (a complete SDXL pipeline saved with "
            "save_pretrained, safetensors weights)"
            if looks_local
            else "check the hub id, network access and HF_TOKEN for gated models, or download "
            "it first and point IMAGINE_MODEL at the local directory"
        )
        raise ModelLoadError(f"cannot load model {source!r}: {reason[:300]}; {hint}") from exc
    if not isinstance(pipe, _diffusers.StableDiffusionXLPipeline):
        raise ModelLoadError(
            f"cannot load model {source!r}: it is a {type(pipe).__name__}, not an SDXL pipeline"
        )
    return pipe
