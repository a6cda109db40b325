"""The fast path: precision, memory format, fused projections, attention kernel, compilation.

Each optimisation is a setting, checked against the device before any weight is loaded (a
combination that cannot work is one ``FastPathError`` saying what to change). ``None`` means
"on where it is safe": CUDA devices get channels-last and a warm-up; CPU keeps today's plain
fp32 path, so CPU renders are bit-for-bit what they were.

- ``dtype``: fp16 on CUDA, fp32 elsewhere (see ``models.pick_dtype``).
- VAE precision (``vae_upcast``): SDXL's VAE overflows in fp16 (NaN, then black images), and
  its config says so with ``force_upcast``. ``auto`` keeps the VAE in fp32 when the UNet runs in
  fp16 and the config asks for it; an fp16-fixed VAE (``force_upcast`` false) stays in fp16.
  ``always`` keeps the VAE in fp32 whatever the dtype. The VAE is kept in fp32 for good (inputs
  are cast on the way in) instead of being cast back and forth around every decode. A VAE left in
  fp16 or bf16 has its decodes checked (``gpu_worker.vae_guard``): one that gives NaN or inf is
  done again in fp32, logged, and the VAE stays in fp32 from then on.
- ``channels_last``: UNet and VAE weights in NHWC, the layout tensor cores want for convolutions.
- ``fuse_qkv``: one matmul for the query/key/value projections of self-attention and one for
  key/value of cross-attention. Off by default: LoRA adapters target the unfused projections.
  The unfused weights become views of the fused ones, so fusing costs no memory.
- ``sdpa_backend``: which scaled-dot-product attention kernel PyTorch may use (``auto``: its
  own choice).
- ``compile``: ``torch.compile`` of the UNet with static shapes (``compile_mode``). Every render
  size then snaps to the nearest of ``size_buckets`` (by aspect ratio), and the warm-up compiles
  each bucket before the first job, so no job waits for a compile; a compile after the warm-up
  is logged as a recompile.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models.attention_processor import Attention
from torch.nn.attention import SDPBackend, sdpa_kernel

from gpu_worker.config import parse_size
from gpu_worker.errors import ModelLoadError
from gpu_worker.vae_guard import KeepPrecision, VaeGuard, dtype_name

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Modes that capture CUDA graphs, which only exist on CUDA devices.
_CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
SDPA_BACKENDS: dict[str, SDPBackend | None] = {
    "auto": None,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    # torch 2.3 has no cuDNN attention kernel.
    "cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", None),
    "math": SDPBackend.MATH,
}
_CUDA_ONLY_BACKENDS = ("flash", "efficient", "cudnn")
_HALF_ONLY_BACKENDS = ("flash", "cudnn")
log = logging.getLogger(__name__)


class FastPathError(ModelLoadError):
    """A fast-path setting does not fit the device or the other settings."""


def nearest_bucket(width: int, height: int, buckets: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The bucket closest in aspect ratio to ``width`` x ``height`` (ties: closest in area)."""
    target = math.log(width / height)
    return min(
        buckets,
        key=lambda b: (abs(math.log(b[0] / b[1]) - target), abs(b[0] * b[1] - width * height)),
    )


def vae_precision(dtype: torch.dtype, force_upcast: bool, policy: str) -> tuple[torch.dtype, str]:
    """The VAE's dtype for a model running in ``dtype``, and why (for the log)."""
    if policy not in ("auto", "always"):
        raise FastPathError(f"vae_upcast must be 'auto' or 'always', got {policy!r}")
    if dtype == torch.float32:
        return dtype, "the model runs in float32"
    if policy == "always":
        return torch.float32, "vae_upcast is 'always'"
    if dtype == torch.float16 and force_upcast:
        return torch.float32, (
            "its config sets force_upcast: this VAE overflows in float16 (NaN, black images); "
            "an fp16-fixed VAE would decode in float16"
        )
    if dtype == torch.float16:
        return dtype, "its config says it is float16-safe (force_upcast false)"
    return dtype, f"{str(dtype).removeprefix('torch.')} has float32's range, no overflow"


@dataclass(frozen=True)
class FastPath:
    """The optimisations one model runs with, resolved for its device."""

    device: torch.device
    dtype: torch.dtype
    channels_last: bool = False
    fuse_qkv: bool = False
    compile: bool = False
    compile_mode: str = "default"
    sdpa_backend: str = "auto"
    vae_upcast: str = "auto"
    warmup: bool = False
    warmup_steps: int = 2
    buckets: tuple[tuple[int, int], ...] = ((1024, 1024),)

    @classmethod
    def resolve(
        cls,
        device: torch.device,
        dtype: torch.dtype,
        *,
        channels_last: bool | None = None,
        fuse_qkv: bool = False,
        compile: bool = False,
        compile_mode: str = "default",
        sdpa_backend: str = "auto",
        vae_upcast: str = "auto",
        warmup: bool | None = None,
        warmup_steps: int = 2,
        size_buckets: Sequence[str] = ("1024x1024",),
        cpu_offload: bool = False,
        lora_adapters: bool = False,
    ) -> FastPath:
        """Check the settings against the device; ``FastPathError`` names what to change.

        ``lora_adapters``: whether LoRA styles or a LoRA profile are configured.
        """
        cuda = device.type == "cuda"
        where = f"the worker runs on {device}"
        if sdpa_backend not in SDPA_BACKENDS:
            raise FastPathError(
                f"sdpa_backend {sdpa_backend!r} is unknown; "
                f"choose one of {', '.join(SDPA_BACKENDS)}"
            )
        if sdpa_backend != "auto" and SDPA_BACKENDS[sdpa_backend] is None:
            raise FastPathError(
                f"sdpa_backend {sdpa_backend!r} needs a newer torch than {torch.__version__}"
            )
        if sdpa_backend in _CUDA_ONLY_BACKENDS and not cuda:
            raise FastPathError(
                f"sdpa_backend {sdpa_backend!r} needs a CUDA device but {where}; "
                "use 'auto' or 'math'"
            )
        if sdpa_backend in _HALF_ONLY_BACKENDS and dtype == torch.float32:
            raise FastPathError(
                f"sdpa_backend {sdpa_backend!r} needs float16 or bfloat16 but dtype is float32; "
                "set dtype, or use 'auto' or 'efficient'"
            )
        if compile_mode not in COMPILE_MODES:
            raise FastPathError(
                f"compile_mode {compile_mode!r} is unknown; "
                f"choose one of {', '.join(COMPILE_MODES)}"
            )
        if compile and compile_mode in _CUDA_GRAPH_MODES and not cuda:
            raise FastPathError(
                f"compile_mode {compile_mode!r} captures CUDA graphs but {where}; "
                "use 'default' or 'max-autotune-no-cudagraphs'"
            )
        if compile and cpu_offload:
            raise FastPathError(
                "compile and cpu_offload cannot be combined: offloading moves the UNet on and off "
                "the card at every call, which a compiled UNet cannot follow; turn one off"
            )
        if fuse_qkv and lora_adapters:
            raise FastPathError(
                "fuse_qkv cannot be combined with LoRA styles or a LoRA profile: adapters patch "
                "the unfused q/k/v projections, which fused attention does not use, so they "
                "would be silently ignored; turn fuse_qkv off"
            )
        if dtype == torch.bfloat16 and cuda and not torch.cuda.is_bf16_supported():
            raise FastPathError(
                f"dtype bfloat16 needs a GPU with bfloat16 support (compute capability 8.0 or "
                f"newer); {torch.cuda.get_device_name(device)} has none; use float16"
            )
        if not 1 <= warmup_steps <= 50:
            raise FastPathError(f"warmup_steps must be between 1 and 50, got {warmup_steps}")
        if not size_buckets:
            raise FastPathError("size_buckets is empty; list at least one size, e.g. 1024x1024")
        try:
            buckets = tuple(dict.fromkeys(parse_size(size) for size in size_buckets))
        except ValueError as exc:
            raise FastPathError(f"size_buckets: {exc}") from None
        if vae_upcast not in ("auto", "always"):
            raise FastPathError(f"vae_upcast must be 'auto' or 'always', got {vae_upcast!r}")
        return cls(
            device=device,
            dtype=dtype,
            channels_last=cuda if channels_last is None else channels_last,
            fuse_qkv=fuse_qkv,
            compile=compile,
            compile_mode=compile_mode,
            sdpa_backend=sdpa_backend,
            vae_upcast=vae_upcast,
            # A compiled UNet must be warm before the first job; on CUDA the warm-up also pays
            # for lazy initialisation (cuBLAS/cuDNN handles, kernel loading, the caching
            # allocator's first blocks) before any user waits, so it is cheap and useful.
            warmup=(cuda or compile) if warmup is None else warmup,
            warmup_steps=warmup_steps,
            buckets=buckets,
        )

    def render_size(self, width: int, height: int) -> tuple[int, int]:
        """The request size to render: its nearest bucket when compiled, else unchanged."""
        return nearest_bucket(width, height, self.buckets) if self.compile else (width, height)

    @contextlib.contextmanager
    def attention(self) -> Iterator[None]:
        """Restrict scaled-dot-product attention to the configured kernel while rendering."""
        backend = SDPA_BACKENDS[self.sdpa_backend]
        if backend is None:
            yield
            return
        with sdpa_kernel([backend]):
            yield

    def apply(self, pipe: Any) -> list[str]:
        """Apply the layout and precision choices to a loaded pipeline; one log line each."""
        notes = []
        vae_dtype, reason = vae_precision(
            self.dtype, bool(pipe.vae.config.get("force_upcast")), self.vae_upcast
        )
        # The pipelines would otherwise cast the VAE to fp32 and back around every decode.
        pipe.vae.register_to_config(force_upcast=False)
        if vae_dtype != self.dtype:
            pipe.vae.to(dtype=vae_dtype)
            KeepPrecision(pipe.vae, vae_dtype).attach()
        notes.append(f"VAE runs in {dtype_name(vae_dtype)}: {reason}")
        if vae_dtype != torch.float32:
            VaeGuard(pipe.vae).install()
            notes.append("VAE decodes giving NaN or inf are redone in float32 (and stay so)")
        if self.channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
            notes.append("UNet and VAE weights are channels-last")
        if self.fuse_qkv:
            pipe.fuse_qkv_projections(unet=True, vae=True)
            _share_fused_weights(pipe.unet)
            _share_fused_weights(pipe.vae)
            notes.append("attention projections fused (q/k/v and cross-attention k/v)")
        if self.sdpa_backend != "auto":
            notes.append(f"attention restricted to the {self.sdpa_backend} SDPA kernel")
        return notes

    def apply_unet(self, unet: Any) -> list[str]:
        """The UNet's share of ``apply`` and the compile, for a UNet loaded on its own (a
        profile's distilled UNet): it runs as fast as the base model's."""
        notes = []
        if self.channels_last:
            unet.to(memory_format=torch.channels_last)
            notes.append("channels-last")
        if self.fuse_qkv:
            unet.fuse_qkv_projections()
            _share_fused_weights(unet)
            notes.append("fused attention projections")
        if self.compile:
            notes.append(self.compile_unet(unet))
        return notes

    def compile_unet(self, unet: Any) -> str:
        """Compile the UNet's forward (static shapes, one graph per size bucket and batch).

        The text length is the one dynamic dimension: prompts over 75 tokens are encoded in
        77-token chunks, and a graph per chunk count would recompile mid-queue for long prompts.
        """
        import torch._dynamo

        config: Any = torch._dynamo.config
        # Renamed in torch 2.6; the old name is kept as an alias there.
        name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        # Each bucket at each batch size is its own graph; the default limit of 8 would make
        # dynamo fall back to eager after the eighth.
        setattr(config, name, max(getattr(config, name), 8 * (len(self.buckets) + 1)))
        # The hook runs before the compiled forward is entered, where marking is allowed.
        unet.register_forward_pre_hook(_text_length_dynamic, with_kwargs=True)
        unet.forward = torch.compile(unet.forward, mode=self.compile_mode, dynamic=False)
        return (
            f"UNet compiled with torch.compile (mode {self.compile_mode}, static shapes but "
            "the text length)"
        )


def compiled_graphs() -> int:
    """How many graphs torch.compile has compiled in this process so far."""
    import torch._dynamo.utils

    counters: Any = torch._dynamo.utils.counters
    return int(counters["stats"]["unique_graphs"])


def _text_length_dynamic(
    module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Forward pre-hook: the text embeddings' length may vary without a recompile."""
    states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
    if isinstance(states, torch.Tensor) and states.ndim == 3:
        from torch import _dynamo

        _dynamo.maybe_mark_dynamic(states, 1)


def _share_fused_weights(model: torch.nn.Module) -> None:
    """Make the unfused projection weights views of the fused ones, so both exist only once."""
    for module in model.modules():
        if not isinstance(module, Attention):
            continue
        parts: tuple[Any, ...]
        if module.is_cross_attention:
            fused, parts = getattr(module, "to_kv", None), (module.to_k, module.to_v)
        else:
            fused, parts = getattr(module, "to_qkv", None), (module.to_q, module.to_k, module.to_v)
        if fused is None:
            continue
        start = 0
        for part in parts:
            rows = part.weight.shape[0]
            part.weight.data = fused.weight.data[start : start + rows]
            if part.bias is not None and fused.bias is not None:
                part.bias.data = fused.bias.data[start : start + rows]
            start += rows
