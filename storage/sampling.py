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

``chaos_noise`` k = 0.7 + 0.3 * chaos / 100 (0.7 at chaos 0, 1.0 at chaos 100). Grid image i
    draws its own noise z_i from a generator seeded ``seed + i``. Image 0 starts from z_0 alone
    (so ``--seed`` reproduces it whatever the chaos); image i >= 1 starts from
    sqrt(1 - k) * z_0 + sqrt(k) * z_i (``latent_mix(i)``), which keeps unit variance. Images 1-3
    correlate with image 0 by sqrt(1 - k) and with each other by 1 - k: at chaos 0 they share
    part of image 0's layout but still differ; at chaos 100 they are fully independent. The
    expected squared distance between two grid images' initial latents grows with chaos.

``weird_scale`` = 0.2 * weird / 3000 (0 at the default, 0.2 at 3000). For grid image i the
    engine adds Gaussian noise of standard deviation ``weird_scale`` times the standard
    deviation of the prompt embeddings (and of the pooled embeddings) to that image's
    embeddings, drawn from a generator seeded ``seed + i`` after its initial latents: each image
    of the grid drifts away from the literal prompt in its own unexpected direction.

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
CHAOS_NOISE_AT_ZERO = 0.7
MAX_WEIRD_SCALE = 0.2


@dataclass(frozen=True)
class SamplingPlan:
    """The SDXL inputs a request stands for (see the module docstring for the mapping)."""

    guidance_scale: float
    style_suffix: str
    segments: tuple[tuple[str, float], ...]
    negative_prompt: str
    chaos_noise: float
    weird_scale: float
    steps: int
    steps_run: int
    tile: bool

    def latent_mix(self, index: int) -> tuple[float, float]:
        """Weights ``(a, b)``: grid image ``index`` starts from ``a * z_0 + b * z_index``."""
        if index == 0:
            return 1.0, 0.0
        return math.sqrt(1.0 - self.chaos_noise), math.sqrt(self.chaos_noise)


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
        chaos_noise=CHAOS_NOISE_AT_ZERO + (1.0 - CHAOS_NOISE_AT_ZERO) * request.chaos / 100,
        weird_scale=MAX_WEIRD_SCALE * request.weird / 3000,
        steps=request.steps,
        steps_run=steps_run(request.steps, request.stop),
        tile=request.tile,
    )
