"""How the Midjourney-style knobs of a request map to SDXL sampling inputs.

One pure function, ``sampling_plan(request)``, shared by the bot (which may show it) and the
engine (which acts on it), so the mapping cannot drift between them. No torch here: the engine
applies the numbers.

The mapping:

``guidance_scale`` (classifier-free guidance) from ``--stylize`` s (0..1000, default 100):
    piecewise linear through (0, 4.0), (100, 7.0), (1000, 9.0): stylize 0 gives 4.0, the
    default gives 7.0, 250 gives 7.33, 1000 gives 9.0. ``--raw`` lowers it by 1.5, never below
    3.0 (default 100 with ``--raw``: 5.5).

``style_suffix`` appended to every positive-weight segment, empty with ``--raw`` or stylize 0:
    stylize 1..50 ", detailed"; 51..250 ", highly detailed, beautiful lighting";
    251..600 ", highly detailed, dramatic lighting, masterpiece"; 601..1000 ", highly detailed,
    dramatic lighting, masterpiece, intricate, award-winning".

``segments`` the ``::`` multi-prompt as (text with suffix, weight / sum of weights): the engine
    encodes each text and blends the embeddings (prompt and pooled) with these weights, which
    sum to 1. Negative weights subtract. A plain prompt is one segment with weight 1.

``negative_prompt`` the ``--no`` text ("" when none), used as SDXL's negative conditioning
    (the unconditional branch of guidance). The parser counts ``--no`` as a -0.5 weight when it
    checks that the weights add up to a positive number.

``chaos_boost`` k = 2 * chaos / 100 (0 at the default, 2 at 100) scales per-image
    "composition" noise added to txt2img starting latents (img2img starts from its image).
    Everything random about grid image i comes from the ``torch.Generator`` seeded ``seed + i``
    alone, so a one-image render of the same request at ``seed + i`` is grid image i; at chaos 0
    nothing is added and the images are exactly a plain diffusers SDXL call's with one
    generator per image. The four images are independent at every chaos, so more white noise
    would add no variety. What sets an image's layout, light and colour is the starting noise's
    large-scale fluctuation, which white noise keeps small (its mean over a block of A latents
    has standard deviation 1 / sqrt(A)); chaos makes it larger, so each image strays further
    from the prompt's typical layout and the grid spreads wider. Guidance and the prompt are
    left alone: one batched call takes one guidance scale, and prompt drift is ``--weird``.

    Cells: ``composition_grid`` divides the latent (C x h x w) into about 4 cells across the
    model's native side (256 px on SDXL), scaled with the image, at least 1 each way.
    L_i: standard normals on the (down + 1) x (across + 1) cell corners, one set per channel,
    upsampled bilinearly (corners aligned with the latent's corners) and divided at each
    position by the interpolation's standard deviation (``bilinear_std``), so every element is
    a unit normal. Image i starts from (z_i + s * L_i) / sqrt(1 + s^2), z_i its white noise,
    s = k / sqrt(cell area in latents) (``composition_amplitude``): over a cell, s * L_i is k
    times white noise's own fluctuation, so the start's block means vary about 1.8x as much as
    white noise's at chaos 100 (sqrt(1 + k^2) = 2.2 were L flat over a cell), and every element
    keeps unit variance. SDXL at 1024x1024 (128x128 latents, 4x4 cells of 32x32 latents), chaos
    100: s = 2 / 32 = 0.0625.

    Draw order from image i's generator: z_i first, exactly as diffusers draws it (shape
    (1, C, h, w)); then the ``--weird`` noise (embeddings, then pooled) when weird > 0; then
    the corners of L_i when chaos > 0. A knob at 0 draws nothing, so it shifts no other draw.

``weird_scale`` = 0.2 * weird / 3000 (0 at the default, 0.2 at 3000). For grid image i the
    engine adds Gaussian noise of standard deviation ``weird_scale`` times the standard
    deviation of the prompt embeddings (and of the pooled embeddings) to that image's
    embeddings, drawn from the generator seeded ``seed + i`` after its initial latents: each
    image of the grid drifts away from the literal prompt in its own unexpected direction.

``steps`` the scheduler's step count (from ``--quality`` or ``--steps``); ``steps_run`` =
    round(steps * stop / 100), at least 1: the engine sets the schedule for ``steps`` and stops
    denoising after ``steps_run`` of them (``--stop``), decoding the latents it has.

``tile`` seamless tiling: circular padding in the UNet and VAE convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from storage.contract import GenerationRequest

RAW_GUIDANCE_DROP = 1.5
MIN_GUIDANCE = 3.0
_SUFFIXES = (
    (0, ""),
    (50, ", detailed"),
    (250, ", highly detailed, beautiful lighting"),
    (600, ", highly detailed, dramatic lighting, masterpiece"),
    (1000, ", highly detailed, dramatic lighting, masterpiece, intricate, award-winning"),
)
MAX_CHAOS_BOOST = 2.0
COMPOSITION_CELLS = 4
MAX_WEIRD_SCALE = 0.2


@dataclass(frozen=True)
class SamplingPlan:
    """The SDXL inputs a request stands for (see the module docstring for the mapping)."""

    guidance_scale: float
    style_suffix: str
    segments: tuple[tuple[str, float], ...]
    negative_prompt: str
    chaos_boost: float
    weird_scale: float
    steps: int
    steps_run: int
    tile: bool

    def composition_amplitude(
        self, latent_width: int, latent_height: int, native_side: int
    ) -> float:
        """Weight ``s`` of composition noise L: starts are (z + s * L) / sqrt(1 + s^2)."""
        across, down = composition_grid(latent_width, latent_height, native_side)
        cell_area = (latent_width / across) * (latent_height / down)
        return self.chaos_boost / math.sqrt(cell_area)


def composition_grid(latent_width: int, latent_height: int, native_side: int) -> tuple[int, int]:
    """Cells ``(across, down)`` of the composition noise: ~4 per native side, at least 1."""
    if min(latent_width, latent_height, native_side) < 1:
        raise ValueError(
            f"latent sides must be positive, got {latent_width}x{latent_height} "
            f"(native {native_side})"
        )

    def cells(side: int) -> int:
        return max(1, math.floor(COMPOSITION_CELLS * side / native_side + 0.5))

    return cells(latent_width), cells(latent_height)


def bilinear_std(size: int, cells: int) -> tuple[float, ...]:
    """Std, at each of ``size`` positions, of ``cells + 1`` unit normals linearly interpolated."""
    if size < 1 or cells < 1:
        raise ValueError(f"size and cells must be positive, got size {size}, cells {cells}")
    if size == 1:
        return (1.0,)
    stds = []
    for position in range(size):
        offset = position * cells / (size - 1)
        fraction = offset - math.floor(offset)
        stds.append(math.sqrt((1.0 - fraction) ** 2 + fraction**2))
    return tuple(stds)


def guidance_scale(stylize: int, raw: bool) -> float:
    """Classifier-free guidance for a stylize value (0..1000) and the raw flag."""
    stylize = min(max(stylize, 0), 1000)
    # Two linear pieces: (0, 4.0) to the default (100, 7.0), then on to (1000, 9.0).
    scale = 4.0 + 3.0 * stylize / 100 if stylize <= 100 else 7.0 + 2.0 * (stylize - 100) / 900
    if raw:
        scale = max(MIN_GUIDANCE, scale - RAW_GUIDANCE_DROP)
    return round(scale, 4)


def style_suffix(stylize: int, raw: bool) -> str:
    """Text appended to positive segments; empty with ``--raw`` or stylize 0."""
    if raw:
        return ""
    for upper, suffix in _SUFFIXES:
        if stylize <= upper:
            return suffix
    return _SUFFIXES[-1][1]


def steps_run(steps: int, stop: int) -> int:
    """Steps actually run when stopping at ``stop`` percent; at least 1."""
    return max(1, math.floor(steps * stop / 100 + 0.5))


def sampling_plan(request: GenerationRequest) -> SamplingPlan:
    """The SDXL sampling inputs for ``request``."""
    suffix = style_suffix(request.stylize, request.raw)
    segments = request.segments or ((request.prompt, 1.0),)
    total = math.fsum(weight for _, weight in segments)
    if total <= 0:
        raise ValueError(f"segment weights must add up to a positive number, got {total}")
    return SamplingPlan(
        guidance_scale=guidance_scale(request.stylize, request.raw),
        style_suffix=suffix,
        segments=tuple(
            (text + suffix if weight > 0 else text, weight / total) for text, weight in segments
        ),
        negative_prompt=request.negative_prompt or "",
        chaos_boost=MAX_CHAOS_BOOST * request.chaos / 100,
        weird_scale=MAX_WEIRD_SCALE * request.weird / 3000,
        steps=request.steps,
        steps_run=steps_run(request.steps, request.stop),
        tile=request.tile,
    )
