"""``imagine generate "<prompt>"``: run the engine locally, no Discord, no database.

Writes the four images and the 2x2 grid as PNG files into ``--out`` and prints
``{"seed", "width", "height", "images", "grid"}`` as JSON, with the size of the images actually
written (the request's SDXL size scaled to the model's native resolution). A prompt that expands
to several requests (permutations, ``--repeat``) renders each and prints a JSON array of such
objects. ``--model`` takes a configured alias, a hub id or a local directory. ``--image PATH``
(repeatable) is a local image taken as the command's attachment: an image prompt, or what
``--control`` follows. A config with profiles, styles, ControlNets and an IP-Adapter
(``--config``) makes ``--turbo``, ``--draft``, ``--lora``, ``--control`` and ``--sref``/``--cref``
(image URLs, downloaded as image prompts are) paint as the worker would.

Exit status: 0 on success, 2 for an invalid prompt or an unreadable ``--image``, 1 when the
model cannot be loaded or the render fails; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import sys
import urllib.request
from pathlib import Path
from typing import Any

from imagine.settings import Settings

MAX_IMAGE_BYTES = 20 * 1024 * 1024


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Parse, render and write the images; print the JSON summary."""
    from bot.prompt import ParserOptions, PromptError, parse

    settings, alias = _model_settings(settings, args.model)
    options = ParserOptions.from_settings(settings)
    try:
        requests = parse(args.text, options=options, image_attached=bool(args.image))
        attached = tuple(_open(path) for path in args.image)
    except (PromptError, ValueError) as exc:
        print(f"imagine generate: {exc}", file=sys.stderr)
        return 2

    # The command's output is the JSON or one error line; library chatter stays out of it.
    import diffusers.utils.logging
    import transformers.utils.logging

    libraries: tuple[Any, ...] = (diffusers.utils.logging, transformers.utils.logging)
    for library in libraries:
        library.set_verbosity_error()

    from gpu_worker.engine import Engine
    from gpu_worker.errors import EngineError
    from gpu_worker.imaging import encode_png, make_grid
    from gpu_worker.models import ModelRegistry
    from gpu_worker.task import RenderTask

    engine = Engine(ModelRegistry(settings.engine()))
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: list[dict[str, Any]] = []
    for n, request in enumerate(requests):
        if alias is not None and request.model is None:
            request = dataclasses.replace(request, model=alias)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        try:
            images = tuple(_fetch(url) for url in request.image_urls) + attached
            task = RenderTask(
                request=request,
                seed=seed,
                init_images=images,
                style_images=tuple(_fetch(url) for url in request.style_refs),
                style_weight=request.style_weight,
                character_images=tuple(_fetch(url) for url in request.character_refs),
                character_weight=request.character_weight,
            )
            result = engine.render(task)
        except (EngineError, OSError, ValueError) as exc:
            print(f"imagine generate: {exc}", file=sys.stderr)
            return 1
        prefix = f"{seed}" if len(requests) == 1 else f"{n + 1}-{seed}"
        paths = []
        for i, image in enumerate(result.images):
            path = out_dir / f"{prefix}-{i + 1}.png"
            path.write_bytes(encode_png(image))
            paths.append(str(path))
        grid_path = out_dir / f"{prefix}-grid.png"
        grid_path.write_bytes(encode_png(make_grid(result.images)))
        summaries.append(
            {
                "seed": seed,
                "width": result.width,
                "height": result.height,
                "images": paths,
                "grid": str(grid_path),
            }
        )
    print(json.dumps(summaries[0] if len(summaries) == 1 else summaries))
    return 0


def _model_settings(settings: Settings, model: str | None) -> tuple[Settings, str | None]:
    """``--model``: an alias stays an alias; anything else becomes the default model."""
    if model is None or model in settings.model_aliases:
        return settings, model
    if model == "default":
        return settings, None
    return settings.model_copy(update={"model": model}), None


def _open(path: Path) -> Any:
    """A local image given with ``--image`` (size-capped), as RGB."""
    from gpu_worker.imaging import decode_image

    try:
        with path.open("rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read --image {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"--image {path} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        return decode_image(data)
    except ValueError as exc:
        raise ValueError(f"--image {path}: {exc}") from None


def _fetch(url: str) -> Any:
    """Download an image prompt or reference (http/https only, size-capped)."""
    from gpu_worker.imaging import decode_image

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"image prompt {url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "imagine/0.1"})
    with urllib.request.urlopen(request, timeout=30) as response:
        data = response.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image prompt {url} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    return decode_image(data)
