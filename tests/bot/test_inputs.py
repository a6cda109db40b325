"""Counting a command's image prompts and the size they are decoded for."""

from __future__ import annotations

import pytest

from bot.errors import UserFacingError
from bot.inputs import check_image_count, fetched_urls, image_urls, render_size
from bot.prompt import parse
from imagine.settings import Settings

A, B, C = (f"https://images.example.com/{n}.png" for n in "abc")


@pytest.mark.parametrize(
    ("prompt", "attached", "limit", "refusal"),
    [
        (f"{A} {B} a fox", False, 2, None),
        (f"{A} {B} a fox", True, 2, "Your command has 3 image prompts; at most 2 are allowed"),
        (f"{A} {A} {B} a fox", True, 3, None),  # a repeated URL is fetched once
        (f"{A} {{red, blue}} fox", False, 1, None),  # every request has the same URL
        (f"{A} a fox", False, 0, "Image prompts are turned off on this server."),
        ("a fox", True, 0, "Image prompts are turned off on this server."),
        ("a fox", False, 0, None),
        # References are downloaded too: they count, a URL used twice once.
        (f"{A} a fox --sref {B} {A} --cref {C}", False, 3, None),
        (
            f"{A} a fox --sref {B}",
            True,
            2,
            "Your command has 3 image prompts and references; at most 2 are allowed",
        ),
        (f"a fox --cref {C}", False, 0, "Image prompts are turned off on this server."),
    ],
)
def test_image_prompt_count(prompt: str, attached: bool, limit: int, refusal: str | None) -> None:
    requests = parse(prompt)
    if refusal is None:
        check_image_count(requests, attached=attached, limit=limit)
        return
    with pytest.raises(UserFacingError) as caught:
        check_image_count(requests, attached=attached, limit=limit)
    assert str(caught.value).startswith(refusal)


def test_urls_are_distinct_and_ordered_and_the_size_is_the_largest() -> None:
    requests = parse(f"{B} {A} {B} a fox --ar 16:9") + parse(f"{C} an owl --ar 2:3")
    assert image_urls(requests) == [B, A, C]
    assert render_size(requests) == (1344, 1216)


def test_reference_urls_are_fetched_after_the_image_prompts_each_once() -> None:
    requests = parse(f"{A} a fox --sref {B} {A}") + parse(f"an owl --cref {C} --sref {B}")
    assert fetched_urls(requests) == [A, B, C]


def test_the_setting_is_bounded() -> None:
    assert Settings.load({}).max_image_prompts == 4
    assert Settings.load({"IMAGINE_MAX_IMAGE_PROMPTS": "0"}).max_image_prompts == 0
    with pytest.raises(ValueError, match="max_image_prompts must be between 0 and 16, got 17"):
        Settings.load({"IMAGINE_MAX_IMAGE_PROMPTS": "17"})
