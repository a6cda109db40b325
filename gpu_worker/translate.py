"""Prompts in other scripts: translated to English in the worker before they are encoded.

SDXL's CLIP text encoders were trained on English captions. A piece of a prompt (the prompt
text, each ``::`` segment, the ``--no`` text) whose letters are mostly not Latin is translated
with the configured ``translation_model`` (a transformers sequence-to-sequence model, MarianMT
``opus-mt-zh-en`` style or NLLB/M2M100, loaded with ``AutoModelForSeq2SeqLM``); pieces in Latin
script are left alone, and so are weights and parameters, which the parser already took out.
The script is read from the Unicode character names (``LATIN ...`` letters against the rest,
marks, digits, spaces and punctuation not counted), not guessed by language detection.
Decoding is greedy, so the same prompt always gives the same English. ``--notr`` (the request's
``translate`` false) keeps the original text.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

import torch

from gpu_worker.errors import ModelLoadError, short_reason
from gpu_worker.sources import resolve

MAX_NEW_TOKENS = 256


def latin_share(text: str) -> float:
    """Share of the letters in ``text`` that are Latin script (1.0 when it has no letters)."""
    letters = [c for c in text if unicodedata.category(c).startswith("L")]
    if not letters:
        return 1.0
    latin = sum(1 for c in letters if unicodedata.name(c, "").startswith("LATIN"))
    return latin / len(letters)


def needs_translation(text: str) -> bool:
    """True when most of the text's letters are not Latin (Chinese, Cyrillic, Arabic...)."""
    return latin_share(text) < 0.5


class Translator:
    """A sequence-to-sequence translation model, loaded on first use and kept."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.calls = 0

    def translate(self, texts: Sequence[str], device: torch.device) -> list[str]:
        """English for each text (greedy decoding); a blank result keeps the original.

        Each text is translated on its own, so its English never depends on what else the
        prompt holds (padding in a batch could change it).
        """
        with self._lock:
            self._load(device)
            results = [self._one(text) for text in texts]
            self.calls += 1
        return [result or original for result, original in zip(results, texts, strict=True)]

    def _one(self, text: str) -> str:
        inputs = self._tokenizer([text], return_tensors="pt")
        inputs = {k: v.to(self._model.device) for k, v in inputs.items()}
        longest = int(inputs["input_ids"].shape[1])
        with torch.no_grad():
            out = self._model.generate(
                **inputs,
                num_beams=1,
                do_sample=False,
                max_new_tokens=min(MAX_NEW_TOKENS, 3 * longest + 8),
            )
        decoded: str = self._tokenizer.decode(out[0], skip_special_tokens=True)
        return " ".join(decoded.split())

    def _load(self, device: torch.device) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            local = resolve(self.source)
            self._tokenizer = AutoTokenizer.from_pretrained(local)
            model = AutoModelForSeq2SeqLM.from_pretrained(local)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            reason = short_reason(exc)
            raise ModelLoadError(
                f"cannot load translation_model {self.source!r}: {reason}"
            ) from exc
        self._model = model.to(device).eval()
