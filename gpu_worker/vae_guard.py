"""Keeping a reduced-precision VAE from ever painting NaN (black) images.

SDXL's VAE overflows in float16: a decode gives NaN or inf, which become black images.
``fastpath.vae_precision`` keeps a VAE whose config says so (``force_upcast``) in float32 from the
start. A VAE that claims to be float16-safe (an "fp16-fix" VAE, ``force_upcast`` false), or one
running in bfloat16, stays in the model's dtype, and ``VaeGuard`` checks every decode it makes:

- if the decoded images hold NaN or inf, it logs one warning, moves the VAE to float32 and
  decodes the same latents again;
- the decision holds for the rest of the process: the VAE's entry points keep it in float32
  (``KeepPrecision``, even when ``from_pipe`` casts shared components back), so later decodes
  are simply float32 decodes;
- latents that are themselves NaN or inf (the UNet overflowed) cannot be decoded in any
  precision: the render fails with ``NonFiniteLatents`` instead of delivering black images.

The check costs one reduction over the decoded images per call, nothing next to the decode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from gpu_worker.errors import EngineError

log = logging.getLogger(__name__)


class NonFiniteLatents(EngineError):
    """The denoised latents hold NaN or inf values, so no VAE can decode them."""


def dtype_name(dtype: torch.dtype) -> str:
    """``float16`` for ``torch.float16``."""
    return str(dtype).removeprefix("torch.")


class KeepPrecision:
    """Forward pre-hook on the VAE's entry points: inputs in the VAE's dtype, and the VAE kept in
    it.

    Every ``from_pipe(..., dtype=...)`` (img2img, inpainting, profiles, ControlNet pipelines)
    casts the shared VAE to the model dtype; in fp16 that is the overflowing decode this exists
    to avoid, so a VAE found cast is put back before it runs.
    """

    def __init__(self, vae: torch.nn.Module, dtype: torch.dtype) -> None:
        self.vae, self.dtype = vae, dtype

    def __call__(self, module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if next(module.parameters()).dtype != self.dtype:
            log.info(
                "the VAE was cast to %s; back to %s",
                dtype_name(next(module.parameters()).dtype),
                dtype_name(self.dtype),
            )
            self.vae.to(dtype=self.dtype)
        return tuple(
            a.to(self.dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
            for a in args
        )

    def attach(self) -> None:
        """Register on the encoder, the post-quantisation convolution and the decoder."""
        vae: Any = self.vae
        for part in (vae.encoder, getattr(vae, "post_quant_conv", None), vae.decoder):
            if part is not None:
                part.register_forward_pre_hook(self)


class VaeGuard:
    """Wraps one VAE's ``decode``: a non-finite decode is redone in float32, for good."""

    def __init__(self, vae: Any) -> None:
        self.vae = vae
        self.upcast = False
        self._decode: Callable[..., Any] = self.vae.decode

    def install(self) -> None:
        """Route the VAE's ``decode`` (what every pipeline sharing it calls) through the guard."""
        self.vae.decode = self.decode

    def decode(self, latents: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """The VAE's decode, checked; see the module docstring."""
        output = self._decode(latents, *args, **kwargs)
        if _finite(output):
            return output
        if not torch.isfinite(latents).all():
            raise NonFiniteLatents(
                "the denoised latents hold NaN or inf values (the UNet overflowed in "
                f"{dtype_name(latents.dtype)}), so the images would be black; run the model in "
                "bfloat16 or float32"
            )
        if self.upcast:
            raise NonFiniteLatents("the VAE decoded NaN or inf values even in float32")
        log.warning(
            "the VAE decoded NaN or inf values in %s; decoding again in float32, and in float32 "
            "from now on",
            dtype_name(next(self.vae.parameters()).dtype),
        )
        self.upcast = True
        self.vae.to(dtype=torch.float32)
        KeepPrecision(self.vae, torch.float32).attach()
        output = self._decode(latents, *args, **kwargs)
        if not _finite(output):
            raise NonFiniteLatents("the VAE decoded NaN or inf values even in float32")
        return output


def _finite(output: Any) -> bool:
    sample = output[0] if isinstance(output, tuple) else output.sample
    return bool(torch.isfinite(sample).all())
