"""``imagine parse`` through a real subprocess: JSON on stdout, or one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CONTRACT_KEYS = {
    "prompt", "segments", "negative_prompt", "image_urls", "image_weight", "aspect", "width",
    "height", "seed", "chaos", "stylize", "quality", "steps", "stop", "tile", "raw", "weird",
    "model", "mode", "loras", "control", "translate", "notes",
}  # fmt: skip


def imagine_parse(text: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "imagine", "parse", text],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_prints_a_json_array_of_requests() -> None:
    result = imagine_parse(
        "https://example.com/fox.png a {red, blue} fox::2 forest --ar 32:18 --seed 7 "
        "--no trees --q .5 --c 20 --tile --v 6",
        IMAGINE_MODEL_ALIASES='{"6": "stabilityai/stable-diffusion-xl-base-1.0"}',
    )
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 2
    assert all(set(item) >= CONTRACT_KEYS for item in data)
    assert data[0] == {
        "prompt": "a red fox forest",
        "segments": [["a red fox", 2.0], ["forest", 1.0]],
        "negative_prompt": "trees",
        "image_urls": ["https://example.com/fox.png"],
        "image_weight": 1.0,
        "aspect": "16:9",
        "width": 1344,
        "height": 768,
        "seed": 7,
        "chaos": 20,
        "stylize": 100,
        "quality": 0.5,
        "steps": 15,
        "stop": 100,
        "tile": True,
        "raw": False,
        "weird": 0,
        "model": "6",
        "mode": "fast",
        "loras": [],
        "control": None,
        "translate": True,
        "style_refs": [],
        "style_weight": 100,
        "character_refs": [],
        "character_weight": 100,
        "notes": [],
    }
    assert data[1]["prompt"] == "a blue fox forest"


def test_settings_reach_the_parser() -> None:
    ok = imagine_parse(
        "a fox --q 2 --r 2", IMAGINE_STEPS_PER_QUALITY='{"1": 20, "2": 40}', IMAGINE_MAX_REPEAT="2"
    )
    assert ok.returncode == 0, ok.stderr
    assert [item["steps"] for item in json.loads(ok.stdout)] == [40, 40]
    refused = imagine_parse("a fox --relax", IMAGINE_ALLOW_RELAX="false")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == "`--relax` is not available on this server; use `--fast`\n"


def test_invalid_prompt_exits_2_with_one_line() -> None:
    result = imagine_parse("a fox --ar 9:1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "`--ar 9:1` is too extreme; allowed ratios range from 1:4 to 4:1\n"


def test_unknown_parameter_suggests_the_closest() -> None:
    result = imagine_parse("a fox --ratio 2:1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "`--ratio` is not a known parameter; did you mean `--ar`?"
    ]


def test_a_gallery_prompt_parses_with_notes_for_what_is_not_honoured() -> None:
    result = imagine_parse(
        "ethereal forest spirit, volumetric light --v 7 --style raw --s 1250 --ar 16:9 "
        "--sref 277118899 --exp 15 --p"
    )
    assert (result.returncode, result.stderr) == (0, "")
    [data] = json.loads(result.stdout)
    assert (data["prompt"], data["raw"], data["stylize"], data["aspect"], data["model"]) == (
        "ethereal forest spirit, volumetric light",
        True,
        1000,
        "16:9",
        None,
    )
    assert data["notes"] == [
        "--v 7: painted with the default model",
        "--s 1250: clamped to 1000",
        "--sref 277118899: Midjourney style codes are not available here",
        "--exp 15: Midjourney's experimental aesthetics are not available here",
        "--p: Midjourney personalization profiles are not available here",
    ]


def test_style_and_character_references_are_printed() -> None:
    result = imagine_parse(
        "a fox --sref <https://example.com/s.png> 277118899 --sw 300 --cref "
        "https://example.com/c.png --cw 40"
    )
    assert (result.returncode, result.stderr) == (0, "")
    [data] = json.loads(result.stdout)
    assert {key: data[key] for key in STYLE_KEYS} == {
        "style_refs": ["https://example.com/s.png"],
        "style_weight": 300,
        "character_refs": ["https://example.com/c.png"],
        "character_weight": 40,
    }
    assert data["notes"] == ["--sref 277118899: Midjourney style codes are not available here"]
    styled = imagine_parse("a fox --sref https://example.com/s.png --sw 300")
    [data] = json.loads(styled.stdout)
    assert {key: data[key] for key in STYLE_KEYS} == {
        "style_refs": ["https://example.com/s.png"],
        "style_weight": 300,
        "character_refs": [],
        "character_weight": 100,
    }
    bad = imagine_parse("a fox --sw 2000")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == "`--sw` must be a whole number from 0 to 1000; got `2000`\n"


STYLE_KEYS = ("style_refs", "style_weight", "character_refs", "character_weight")


def test_strict_models_and_styles_settings_reach_the_parser() -> None:
    strict = imagine_parse("a fox --v 7", IMAGINE_STRICT_MODELS="true")
    assert (strict.returncode, strict.stdout) == (2, "")
    assert (
        strict.stderr == "`--v 7`: model `7` is not available on this server; available: default\n"
    )
    styled = imagine_parse(
        "a fox --style Cute --lora extra",
        IMAGINE_STYLES='{"cute": "kawaii, pastel colors --lora cute-xl:0.8"}',
    )
    assert styled.returncode == 0, styled.stderr
    [data] = json.loads(styled.stdout)
    assert (data["prompt"], data["loras"], data["notes"]) == (
        "a fox, kawaii, pastel colors",
        [["cute-xl", 0.8], ["extra", 1.0]],
        [],
    )


def test_a_bad_styles_table_is_a_configuration_error() -> None:
    result = imagine_parse("a fox", IMAGINE_STYLES='{"raw": "plain"}')
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("imagine: invalid configuration: styles: `raw`")
