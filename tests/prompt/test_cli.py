"""``imagine parse`` through a real subprocess: JSON on stdout, or one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CONTRACT_KEYS = {
    "prompt", "segments", "negative_prompt", "image_urls", "image_weight", "aspect", "width",
    "height", "seed", "chaos", "stylize", "quality", "steps", "stop", "tile", "raw", "weird",
    "model", "mode",
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
    assert result.stderr == (
        "aspect ratio `9:1` is too extreme; allowed ratios range from 1:4 to 4:1\n"
    )


def test_unknown_parameter_suggests_the_closest() -> None:
    result = imagine_parse("a fox --ratio 2:1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "`--ratio` is not a known parameter; did you mean `--ar`?"
    ]
