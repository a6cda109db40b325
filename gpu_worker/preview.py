"""Progress previews decoded from latents with a fixed linear map: no VAE pass, no extra weights.

SDXL's four latent channels are close to a linear function of RGB; the 4x3 factors below are the
widely used least-squares fit for the SDXL VAE. Decoding a 128x128 latent this way costs
microseconds, so a preview never slows the denoising loop. Stable Cascade's prior latents
(16 channels, 1/42 of the image side) have no published linear fit: they are shown in false
colour (the channel thirds' means as red, green and blue, each stretched to its range), which
shows the layout forming, not its true colours.
"""

from __future__ import annotations

import io

import torch
from PIL import Image

from gpu_worker.imaging import make_grid

SDXL_LATENT_RGB_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_LATENT_RGB_BIAS = (0.1084, -0.0175, -0.0011)
PREVIEW_SIZE = 128
CASCADE_CHANNELS = 16


def latents_to_images(latents: torch.Tensor) -> list[Image.Image]:
    """Approximate RGB images (one per batch item) of SDXL latents shaped (B, 4, H, W), or
    false-colour ones of Stable Cascade prior latents (B, 16, H, W)."""
    if latents.ndim == 4 and latents.shape[1] == CASCADE_CHANNELS:
        return _false_colour(latents)
    if latents.ndim != 4 or latents.shape[1] != 4:
        raise ValueError(f"expected SDXL latents (B, 4, H, W), got shape {tuple(latents.shape)}")
    factors = torch.tensor(SDXL_LATENT_RGB_FACTORS, dtype=torch.float32)
    bias = torch.tensor(SDXL_LATENT_RGB_BIAS, dtype=torch.float32)
    with torch.no_grad():
        flat = latents.detach().float().cpu()
        rgb = torch.einsum("bchw,cr->bhwr", flat, factors) + bias
        pixels = ((rgb.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).numpy()
    return [Image.fromarray(pixels[i], mode="RGB") for i in range(pixels.shape[0])]


def _false_colour(latents: torch.Tensor) -> list[Image.Image]:
    with torch.no_grad():
        flat = latents.detach().float().cpu()
        thirds = torch.stack([part.mean(dim=1) for part in flat.chunk(3, dim=1)], dim=-1)
        low = thirds.amin(dim=(1, 2), keepdim=True)
        high = thirds.amax(dim=(1, 2), keepdim=True)
        scaled = (thirds - low) / (high - low).clamp(min=1e-6)
        pixels = (scaled * 255).round().to(torch.uint8).numpy()
    # A few latent cells across: enlarged so the thumbnail is not a handful of pixels.
    return [
        Image.fromarray(pixels[i], mode="RGB").resize(
            (pixels.shape[2] * 8, pixels.shape[1] * 8), Image.Resampling.BILINEAR
        )
        for i in range(pixels.shape[0])
    ]


def preview_jpeg(latents: torch.Tensor, max_side: int = PREVIEW_SIZE, quality: int = 70) -> bytes:
    """A small JPEG of the latents: a 2x2 grid for four images, else the first image."""
    images = latents_to_images(latents)
    picture = make_grid(images) if len(images) == 4 else images[0]
    picture.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
