"""The full-size random SDXL: published sizes on the meta device, the writer at small scale through
the real load path, and (slow) the full-size command within its memory bound."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from gpu_worker.engine import Engine
from gpu_worker.fullsize import (
    COMPONENTS,
    SDXL_BASE,
    SdxlSpec,
    build_component,
    clip_vocabulary,
    parameter_counts,
    write_sdxl,
)
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from imagine.settings import Settings
from tests.worker.conftest import request

# stabilityai/stable-diffusion-xl-base-1.0, as published.
SDXL_PARAMETERS = {
    "unet": 2_567_463_684,
    "vae": 83_653_863,
    "text_encoder": 123_060_480,
    "text_encoder_2": 694_659_840,
}
# The same structure (three levels, 1/2/10 transformer layers, text_time, two text encoders,
# CLIP's vocabulary), a tenth of the width: written and loaded in a second.
SMALL = SdxlSpec(
    unet={
        **SDXL_BASE.unet,
        "sample_size": 8,
        "block_out_channels": [32, 64, 128],
        "attention_head_dim": [1, 2, 4],
        "layers_per_block": 1,
        "cross_attention_dim": 96,
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 6 * 8 + 64,
    },
    vae={**SDXL_BASE.vae, "block_out_channels": [32, 32, 64, 64], "layers_per_block": 1},
    text_encoder={
        **SDXL_BASE.text_encoder,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "projection_dim": 32,
    },
    text_encoder_2={
        **SDXL_BASE.text_encoder_2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "projection_dim": 64,
    },
)


def test_full_size_spec_has_sdxl_base_parameter_counts_and_config() -> None:
    assert parameter_counts(SDXL_BASE) == SDXL_PARAMETERS
    with torch.device("meta"):
        unet = build_component(SDXL_BASE, "unet")
        text_2 = build_component(SDXL_BASE, "text_encoder_2")
        text_1 = build_component(SDXL_BASE, "text_encoder")
        vae = build_component(SDXL_BASE, "vae")
    assert list(unet.config.transformer_layers_per_block) == [1, 2, 10]
    assert unet.config.cross_attention_dim == 2048
    assert unet.config.addition_embed_type == "text_time"
    assert unet.config.projection_class_embeddings_input_dim == 2816
    assert list(unet.config.block_out_channels) == [320, 640, 1280]
    assert (text_1.config.hidden_size, text_1.config.num_hidden_layers) == (768, 12)
    assert (text_2.config.hidden_size, text_2.config.num_hidden_layers) == (1280, 32)
    assert text_2.config.projection_dim == 1280
    assert text_1.config.vocab_size == text_2.config.vocab_size == 49408
    assert vae.config.latent_channels == 4 and vae.config.force_upcast is True
    assert next(unet.parameters()).dtype == torch.float16
    SDXL_BASE.check()


def test_clip_vocabulary_has_the_real_size_and_only_merges_of_known_tokens() -> None:
    vocab, merges = clip_vocabulary(49408)
    assert len(vocab) == 49408 == len(set(vocab.values()))
    assert vocab["!"] == 0
    assert (vocab["<|startoftext|>"], vocab["<|endoftext|>"]) == (49406, 49407)
    assert len(merges) == 49408 - 512 - 2
    for merge in merges:
        left, right = merge.split(" ")
        assert vocab[left] < vocab[left + right] and vocab[right] < vocab[left + right]


def test_inconsistent_spec_is_a_clear_error(tmp_path: Path) -> None:
    broken = SdxlSpec(
        unet={**SMALL.unet, "cross_attention_dim": 100},
        vae=SMALL.vae,
        text_encoder=SMALL.text_encoder,
        text_encoder_2=SMALL.text_encoder_2,
    )
    with pytest.raises(ValueError, match="cross_attention_dim is 100 but the two text encoders"):
        write_sdxl(tmp_path / "broken", broken)
    assert not (tmp_path / "broken").exists()


def test_writer_saves_fp16_components_that_load_and_render_like_a_checkpoint(
    tmp_path: Path,
) -> None:
    target = write_sdxl(tmp_path / "small", SMALL, seed=1, max_shard_size="20MB")
    for name in COMPONENTS:
        files = sorted((target / name).glob("*.safetensors"))
        with safe_open(files[0], "pt") as handle:
            first = handle.keys()[0]
            assert handle.get_slice(first).get_dtype() == "F16"
    # The UNet (32 MB in fp16) is over the shard size, so it comes in shards with an index.
    assert len(list((target / "unet").glob("*.safetensors"))) > 1
    assert (target / "unet" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    index = json.loads((target / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"

    engine = Engine(ModelRegistry(Settings.load({}, model=str(target)).engine()), cpu_threads=1)
    engine.prepare()
    model = engine.registry.get()
    assert len(model.txt2img.tokenizer) == len(model.txt2img.tokenizer_2) == 49408
    assert model.txt2img.tokenizer_2.pad_token_id == 0
    assert list(model.txt2img.unet.config.transformer_layers_per_block) == [1, 2, 10]
    result = engine.render(RenderTask(request("a lighthouse at dusk"), seed=3))
    assert (result.width, result.height) == (64, 64)
    pixels = np.stack([np.asarray(image, dtype=np.float64) for image in result.images])
    assert np.isfinite(pixels).all() and pixels.std() > 1.0


@pytest.mark.slow
def test_full_size_command_writes_sdxl_base_within_its_memory_bound(tmp_path: Path) -> None:
    # Its own process, so its peak resident memory is its own.
    target = tmp_path / "sdxl"
    script = (
        "import resource, sys\n"
        "from imagine.cli import main\n"
        "code = main(['tiny-model', sys.argv[1], '--full-size'])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(target)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        path, peak_kib = done.stdout.split()
        assert path == str(target)
        # The UNet alone is 4.8 GiB in fp16; the whole pipeline in fp32 would be 13 GiB.
        assert int(peak_kib) < 8 * 2**20
        assert "writing unet (2,567.5 M parameters)" in done.stderr
        for name, expected in SDXL_PARAMETERS.items():
            count, dtypes = 0, set()
            for shard in (target / name).glob("*.safetensors"):
                with safe_open(shard, "pt") as handle:
                    names = handle.keys()  # a safetensors handle is not iterable
                    for key in names:
                        tensor = handle.get_slice(key)
                        count += int(np.prod(tensor.get_shape()))
                        dtypes.add(tensor.get_dtype())
            assert (count, dtypes) == (expected, {"F16"}), name
        assert len(list((target / "unet").glob("*.safetensors"))) == 3
    finally:
        # 6.5 GB: never left behind in pytest's kept temporary directories.
        shutil.rmtree(target, ignore_errors=True)
