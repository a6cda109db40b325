"""Which family a model belongs to: from its ``model_index.json``, or as configured."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gpu_worker.errors import ModelLoadError
from gpu_worker.sources import cached
from storage.families import CASCADE, LABELS, SDXL

log = logging.getLogger(__name__)

# model_index.json ``_class_name`` -> family.
CLASS_NAMES = {
    "StableDiffusionXLPipeline": SDXL,
    "StableDiffusionXLImg2ImgPipeline": SDXL,
    "StableCascadeCombinedPipeline": CASCADE,
    # The decoder as stabilityai/stable-cascade publishes it; its prior is NAME-prior.
    "StableCascadeDecoderPipeline": CASCADE,
}


def check_family(name: str, where: str) -> str:
    """``name`` when it is a known family, else ModelLoadError naming ``where`` it was set."""
    if name not in LABELS:
        raise ModelLoadError(
            f"{where}: unknown model family {name!r}; families: {', '.join(LABELS)}"
        )
    return name


def detect(source: str) -> str:
    """The family of the model at ``source``, from its model_index.json when it is on disk
    (a local directory, or a hub or ModelScope snapshot already cached); else SDXL."""
    local = cached(source)
    index = Path(local) / "model_index.json" if local else None
    if index is None or not index.is_file():
        return SDXL
    try:
        class_name = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError):
        return SDXL
    family = CLASS_NAMES.get(str(class_name))
    if family is None:
        log.warning("model %s is a %s; serving it as SDXL", source, class_name)
        return SDXL
    return family
