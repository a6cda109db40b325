"""Process settings: environment variables with prefix ``IMAGINE_`` and an optional TOML file.

One ``Settings`` object is built in ``main`` (``Settings.load()``) and passed down; nothing reads
the environment anywhere else. Tests pass their own mapping to ``Settings.load(environ)``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

DEFAULT_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
DISCORD_API_BASE = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

Period = Literal["day", "week", "month", "total"]
# The SDXL sizes of the prompt language's named ratios (DESIGN section 4), landscape and portrait.
SDXL_SIZES = (
    "1024x1024",
    *(
        f"{w}x{h}"
        for w, h in ((1152, 896), (1216, 832), (1344, 768), (1536, 640), (1408, 704), (1728, 576))
        for w, h in ((w, h), (h, w))
    ),
)
_SIZE = re.compile(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})")


class Settings(BaseSettings):
    """Everything a bot or worker process is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGINE_",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # Discord
    discord_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("IMAGINE_DISCORD_TOKEN", "DISCORD_TOKEN", "discord_token"),
    )
    discord_api_base: str = DISCORD_API_BASE
    discord_gateway_url: str = DISCORD_GATEWAY_URL
    guild_ids: list[int] = Field(
        default_factory=list,
        description="Sync slash commands to these guilds at once (global sync otherwise).",
    )
    admin_user_ids: list[int] = Field(default_factory=list)
    admin_role_ids: list[int] = Field(default_factory=list)
    allow_foreign_clicks: bool = True
    upload_limit_bytes: int = 8 * 1024 * 1024

    # Storage
    data_dir: Path = Path("./data")
    database_url: str | None = None

    # Models and engine
    model: str = DEFAULT_MODEL
    model_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Name -> hub id or directory, for --model NAME, --v N and --niji.",
    )
    scheduler: Literal["dpmpp_2m_karras", "euler_a"] = "dpmpp_2m_karras"
    device: str | None = None
    dtype: Literal["float16", "bfloat16", "float32"] | None = None
    compile: bool = False
    cpu_offload: bool = False
    # GPU fast path (gpu_worker/fastpath.py); None: on where safe (CUDA), off on CPU.
    channels_last: bool | None = None
    fuse_qkv: bool = False
    compile_mode: Literal[
        "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"
    ] = "default"
    sdpa_backend: Literal["auto", "flash", "efficient", "cudnn", "math"] = "auto"
    vae_upcast: Literal["auto", "always"] = "auto"
    warmup: bool | None = None
    warmup_steps: int = Field(default=2, ge=1, le=50)
    size_buckets: list[str] = Field(
        default_factory=lambda: list(SDXL_SIZES),
        description="Render sizes compiled at warm-up; with compile, sizes snap to these.",
    )
    steps_per_quality: dict[str, int] = Field(
        default_factory=lambda: {"0.25": 8, "0.5": 15, "1": 30, "2": 60}
    )
    upscaler_model: Path | None = None

    # Queue and workers
    worker_id: str | None = None
    lease_seconds: float = 60.0
    max_attempts: int = 3
    poll_interval: float = 2.0

    # Quotas and limits (server defaults; admins override per user)
    quota_images: int = 200
    quota_period: Period = "day"
    max_concurrent_jobs: int = 3
    max_queued_jobs: int = 10
    max_repeat: int = 4
    allow_relax: bool = True

    # Observability
    metrics_port: int | None = None
    log_level: str = "INFO"

    @field_validator("max_repeat")
    @classmethod
    def _repeat_range(cls, value: int) -> int:
        if not 1 <= value <= 16:
            raise ValueError(f"max_repeat must be between 1 and 16, got {value}")
        return value

    @field_validator("size_buckets")
    @classmethod
    def _bucket_sizes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("size_buckets must list at least one size, e.g. 1024x1024")
        for size in value:
            match = _SIZE.fullmatch(size)
            sides = (int(match[1]), int(match[2])) if match else (0, 0)
            if not all(side % 64 == 0 and 256 <= side <= 4096 for side in sides):
                raise ValueError(
                    f"size_buckets entry {size!r} must be WIDTHxHEIGHT with sides that are "
                    "multiples of 64 from 256 to 4096, e.g. 1216x832"
                )
        return value

    @property
    def database(self) -> str:
        """The SQLAlchemy async URL: the configured one, or SQLite under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imagine.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database.startswith("sqlite")

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) and a TOML file.

        Precedence: keyword overrides, then environment, then the TOML file
        (``config_file`` or ``IMAGINE_CONFIG``), then defaults.
        """
        env = dict(os.environ if environ is None else environ)
        path = config_file or (Path(env["IMAGINE_CONFIG"]) if env.get("IMAGINE_CONFIG") else None)
        file_values: dict[str, Any] = {}
        if path is not None:
            try:
                file_values = tomllib.loads(path.read_text())
            except FileNotFoundError:
                raise ValueError(f"config file {path} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
        return _build(cls, env, file_values, overrides)


def _build(
    cls: type[Settings],
    env: Mapping[str, str],
    file_values: dict[str, Any],
    overrides: dict[str, Any],
) -> Settings:
    class _MappingEnv(EnvSettingsSource):
        def _load_env_vars(self) -> Mapping[str, str | None]:
            return parse_env_vars(env, False, self.env_ignore_empty, self.env_parse_none_str)

    class _Loaded(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls_,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                _MappingEnv(settings_cls),
                InitSettingsSource(settings_cls, init_kwargs=file_values),
            )

    loaded = _Loaded(**overrides)
    return cls.model_validate(loaded.model_dump())
