"""Process settings: environment variables with prefix ``IMAGINE_`` and an optional TOML file.

One ``Settings`` object is built in ``main`` (``Settings.load()``); nothing reads the environment
anywhere else. Tests pass their own mapping to ``Settings.load(environ)``.

Its flat field names are the configuration contract (``IMAGINE_<NAME>``, TOML keys). Each package
declares the slice it needs as a frozen dataclass (``bot.config.BotSettings``,
``gpu_worker.config.WorkerSettings`` and ``EngineSettings``, ``storage.config.StorageSettings``),
and the methods ``bot()``, ``worker()``, ``engine()`` and ``storage()`` below are the one place
that builds them: a slice field takes the flat setting of the same name unless the method
computes it, so a new setting reaches a package by adding a flat field here and a field of the
same name to that package's slice.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from bot.config import BotSettings
from bot.prompt import NAMED_SIZES, ParserOptions
from gpu_worker.config import MAX_BATCH_JOBS, EngineSettings, WorkerSettings, parse_size
from storage.config import StorageSettings
from storage.errors import InvalidValue
from storage.limits import Limits
from storage.stores import ImageStoreConfig, check_store

DEFAULT_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
DISCORD_API_BASE = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

Period = Literal["day", "week", "month", "total"]
Slice = TypeVar("Slice")
# The SDXL sizes of the prompt language's named ratios (DESIGN section 4), landscape and portrait.
SDXL_SIZES = tuple(
    dict.fromkeys(f"{a}x{b}" for w, h in NAMED_SIZES.values() for a, b in ((w, h), (h, w)))
)


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
    admin_guild_ids: list[int] = Field(
        default_factory=list,
        description="Guilds where Manage Server makes a member an admin (default: guild_ids).",
    )
    allowed_guild_ids: list[int] = Field(
        default_factory=list,
        description="When set, the bot works only in these guilds and leaves any other.",
    )
    allow_foreign_clicks: bool = True
    u_cooldown_seconds: float = Field(default=5.0, ge=0)
    upload_limit_bytes: int = 8 * 1024 * 1024
    # A result Discord keeps refusing (other than for good) is retried with backoff starting
    # here and doubling (at most 15 min), then given up after this many attempts.
    delivery_retry_seconds: float = Field(default=1.0, gt=0)
    delivery_max_attempts: int = Field(default=12, ge=1)

    # Storage
    data_dir: Path = Path("./data")
    database_url: str | None = None
    # Image store: "file" (under the data dir) or "s3://BUCKET[/PREFIX]"; the AWS_* variables
    # keep their standard names (unset: botocore's own chain, such as an instance role).
    image_store: str = "file"
    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "aws_access_key_id")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    )
    aws_session_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AWS_SESSION_TOKEN", "aws_session_token")
    )
    aws_default_region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION", "aws_default_region"),
    )
    # SQLite's own wait for the write lock per attempt, and how long a write keeps retrying a
    # locked or unreachable database (with backoff) before it reports it unavailable.
    database_busy_timeout: float = Field(default=5.0, gt=0)
    database_retry_seconds: float = Field(default=60.0, ge=0)

    # Models and engine
    model: str = DEFAULT_MODEL
    model_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Name -> hub id or directory, for --model NAME, --v N and --niji.",
    )
    model_families: dict[str, str] = Field(
        default_factory=dict,
        description="Name (default: the default model) -> sdxl or cascade; else detected.",
    )
    strict_models: bool = Field(
        default=False,
        description="Refuse --v/--niji values without an alias (else the default model paints).",
    )
    styles: dict[str, str] = Field(
        default_factory=dict,
        description="--style NAME -> prompt suffix, optionally followed by --lora NAME[:W].",
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
    # Speed profiles, LoRA styles, ControlNet, IP-Adapter and translation (gpu_worker.extras).
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="turbo/draft -> {model, unet | lora, scheduler, steps, guidance, size}.",
    )
    loras: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Style name -> {path, trigger, weight}."
    )
    lora_dir: Path | None = None
    controlnets: dict[str, str] = Field(
        default_factory=dict, description="canny/depth -> ControlNet directory or hub id."
    )
    depth_estimator: str | None = None
    ip_adapter: str | None = None
    ip_adapter_image_encoder: str | None = None
    translation_model: str | None = None

    # Queue and workers
    worker_id: str | None = None
    lease_seconds: float = 60.0
    max_attempts: int = 3
    poll_interval: float = 2.0
    # Up to this many compatible txt2img jobs in one pipeline call (1: off).
    max_batch_jobs: int = 1

    # Quotas and limits (server defaults; admins override per user)
    quota_images: int = 200
    quota_period: Period = "day"
    max_concurrent_jobs: int = 3
    max_queued_jobs: int = 10
    max_repeat: int = 4
    max_image_prompts: int = 4
    allow_relax: bool = True
    # Relax costs no quota; this caps each user's relax images per UTC day (0: relax refused).
    relax_images_per_day: int = Field(default=100, ge=0, le=1_000_000)

    # Observability
    metrics_port: int | None = None
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Operations: the bot's web server (dashboard, health), worker health, retention
    web_port: int | None = None
    web_host: str = "0.0.0.0"
    public_url: str | None = None
    web_secret: SecretStr | None = None
    # Vary (Region): how long an editor link works (it works once).
    region_link_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    worker_health_port: int | None = None
    image_retention_days: float | None = None

    @field_validator("max_repeat")
    @classmethod
    def _repeat_range(cls, value: int) -> int:
        if not 1 <= value <= 16:
            raise ValueError(f"max_repeat must be between 1 and 16, got {value}")
        return value

    @field_validator("web_port", "worker_health_port", "metrics_port")
    @classmethod
    def _port_range(cls, value: int | None) -> int | None:
        # 0 asks the system for any free port (the address is logged at start-up).
        if value is not None and not 0 <= value <= 65535:
            raise ValueError(f"a port must be between 0 and 65535, got {value}")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"public_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("image_retention_days")
    @classmethod
    def _retention_positive(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"image_retention_days must be more than 0, got {value}")
        return value

    @field_validator("max_image_prompts")
    @classmethod
    def _image_prompts_range(cls, value: int) -> int:
        if not 0 <= value <= 16:
            raise ValueError(f"max_image_prompts must be between 0 and 16, got {value}")
        return value

    @field_validator("image_store")
    @classmethod
    def _image_store(cls, value: str) -> str:
        try:
            return check_store(value)
        except InvalidValue as exc:
            raise ValueError(str(exc)) from None

    @property
    def image_store_config(self) -> ImageStoreConfig:
        """Which image store to open, for ``storage.stores``."""
        secret, token = self.aws_secret_access_key, self.aws_session_token
        return ImageStoreConfig(
            store=self.image_store,
            data_dir=self.data_dir,
            endpoint_url=self.s3_endpoint_url,
            region=self.aws_default_region,
            access_key_id=self.aws_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            session_token=token.get_secret_value() if token else None,
        )

    @field_validator("max_batch_jobs")
    @classmethod
    def _batch_range(cls, value: int, info: ValidationInfo) -> int:
        if not 1 <= value <= MAX_BATCH_JOBS:
            raise ValueError(
                f"max_batch_jobs must be from 1 (no batching) to {MAX_BATCH_JOBS}, got {value}"
            )
        if value > 1 and info.data.get("compile"):
            raise ValueError(
                "max_batch_jobs above 1 cannot be combined with compile: every batch size is "
                "another graph the warm-up does not compile, so jobs would wait for compiles; "
                "set max_batch_jobs to 1 or compile to false"
            )
        return value

    @field_validator("size_buckets")
    @classmethod
    def _bucket_sizes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("size_buckets must list at least one size, e.g. 1024x1024")
        for size in value:
            try:
                parse_size(size)
            except ValueError as exc:
                raise ValueError(f"size_buckets entry: {exc}") from None
        return value

    @property
    def database(self) -> str:
        """The SQLAlchemy async URL: the configured one, or SQLite under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imagine.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database.startswith("sqlite")

    # -- the slices each process is handed ------------------------------------------------------

    def storage(self) -> StorageSettings:
        """The storage slice (``open_storage``)."""
        return self._slice(
            StorageSettings,
            database=self.database,
            limits=Limits.from_settings(self),
            image_store_config=self.image_store_config,
        )

    def bot(self) -> BotSettings:
        """The bot process's slice, with its storage slice."""
        return self._slice(
            BotSettings, parser=ParserOptions.from_settings(self), storage=self.storage()
        )

    def engine(self) -> EngineSettings:
        """The engine's slice: models, scheduler, device."""
        return self._slice(EngineSettings)

    def worker(self) -> WorkerSettings:
        """The worker loop's slice, with its engine's slice."""
        return self._slice(WorkerSettings, engine=self.engine())

    def _slice(self, cls: type[Slice], **computed: Any) -> Slice:
        """``cls`` with each field from ``computed`` or else the flat setting of that name."""
        values = dict(computed)
        for slot in dataclasses.fields(cls):  # type: ignore[arg-type]
            if slot.name in values:
                continue
            if slot.name not in type(self).model_fields:
                raise TypeError(
                    f"{cls.__name__}.{slot.name} has no setting of that name; add the field to "
                    f"Settings or compute it in the method that builds {cls.__name__}"
                )
            # A copy, so no slice shares a list or dict with these settings or another slice.
            values[slot.name] = copy.copy(getattr(self, slot.name))
        return cls(**values)

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
