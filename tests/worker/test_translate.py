"""Prompts in other scripts on the tiny model: translated in the worker, both texts kept."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_worker.engine import Engine
from gpu_worker.task import RenderTask
from gpu_worker.translate import latin_share, needs_translation
from tests.worker.conftest import pixels, request

FOX = "一只红色的狐狸在雪地里"


@pytest.mark.parametrize(
    ("text", "translate"),
    [
        (FOX, True),
        ("一只红色的狐狸在雪地里, fox", True),  # 11 Han letters against 3 Latin
        ("一只红色的狐狸 in the snow", False),  # 7 Han letters against 9 Latin
        ("a red fox 在雪地里", False),
        ("Привет, мир", True),
        ("café crème, 1920s", False),
        ("12345 !!", False),
    ],
)
def test_script_decides_what_is_translated(text: str, translate: bool) -> None:
    assert needs_translation(text) is translate


def test_latin_share_counts_letters_only() -> None:
    assert latin_share("ab 狐狸, 12!") == 0.5
    assert latin_share("...") == 1.0


def test_a_chinese_prompt_is_painted_in_english_and_both_texts_are_kept(
    extras_engine: Engine,
) -> None:
    result = extras_engine.render(RenderTask(request(FOX, negative_prompt="雪"), seed=5))
    translation = result.info["translation"]
    english = translation["prompt"]
    assert english and english != FOX
    assert translation["segments"] == [[english, 1.0]]
    assert translation["negative_prompt"] not in (None, "雪")
    # What was painted is exactly the English prompt, encoded as if typed in English.
    typed = extras_engine.render(
        RenderTask(
            request(english, negative_prompt=translation["negative_prompt"], translate=False),
            seed=5,
        )
    )
    assert "translation" not in typed.info
    for a, b in zip(result.images, typed.images, strict=True):
        assert np.array_equal(pixels(a), pixels(b))
    again = extras_engine.render(RenderTask(request(FOX, negative_prompt="雪"), seed=5))
    assert again.info["translation"] == translation


def test_notr_keeps_the_original_and_latin_prompts_are_not_translated(
    extras_engine: Engine,
) -> None:
    translator = extras_engine.features.translator
    assert translator is not None
    calls = translator.calls
    kept = extras_engine.render(RenderTask(request(FOX, translate=False), seed=5))
    latin = extras_engine.render(RenderTask(request("a red fox in the snow"), seed=5))
    assert "translation" not in kept.info and "translation" not in latin.info
    assert translator.calls == calls
    translated = extras_engine.render(RenderTask(request(FOX), seed=5))
    assert translator.calls == calls + 1
    assert (
        min(
            float(np.abs(pixels(a) - pixels(b)).mean())
            for a, b in zip(kept.images, translated.images, strict=True)
        )
        > 0
    )


def test_only_the_non_latin_segments_are_translated_and_weights_stay(
    extras_engine: Engine,
) -> None:
    req = request(f"{FOX} oil painting", segments=((FOX, 0.75), ("oil painting", 0.25)))
    result = extras_engine.render(RenderTask(req, seed=2, indices=(0,)))
    segments = result.info["translation"]["segments"]
    assert segments[1] == ["oil painting", 0.25]
    assert segments[0][1] == 0.75 and segments[0][0] != FOX
