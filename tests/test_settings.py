"""Settings: environment, TOML file and precedence, without touching os.environ."""

import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from imagine.cli import main
from imagine.settings import DEFAULT_MODEL, Settings
from storage.limits import Limits

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "imagine.example.toml"


def test_defaults_use_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.load({"IMAGINE_DATA_DIR": str(tmp_path)})
    assert settings.model == DEFAULT_MODEL
    assert settings.database == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'imagine.db'}"
    assert settings.is_sqlite
    assert settings.discord_token is None


def test_plain_discord_token_is_accepted_and_kept_secret() -> None:
    settings = Settings.load({"DISCORD_TOKEN": "abc.def"})
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "abc.def"
    assert "abc.def" not in repr(settings)


def test_prefixed_token_wins_over_plain() -> None:
    settings = Settings.load({"DISCORD_TOKEN": "plain", "IMAGINE_DISCORD_TOKEN": "prefixed"})
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "prefixed"


def test_example_config_file_loads_and_environment_wins() -> None:
    settings = Settings.load({"IMAGINE_MAX_REPEAT": "2"}, config_file=EXAMPLE)
    assert settings.database.startswith("postgresql+asyncpg://")
    assert settings.quota_period == "day"
    assert settings.max_repeat == 2


def test_complex_values_from_environment() -> None:
    settings = Settings.load(
        {"IMAGINE_MODEL_ALIASES": '{"niji": "/models/niji"}', "IMAGINE_GUILD_IDS": "[1, 2]"}
    )
    assert settings.model_aliases == {"niji": "/models/niji"}
    assert settings.guild_ids == [1, 2]


def test_invalid_value_names_the_setting() -> None:
    with pytest.raises(ValidationError, match="max_repeat"):
        Settings.load({"IMAGINE_MAX_REPEAT": "40"})


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Settings.load({}, config_file=tmp_path / "nope.toml")


def test_cli_reports_bad_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("quota_period = 'fortnight'\n")
    assert main(["--config", str(bad), "parse", "a cat"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    assert "quota_period" in err


def test_each_package_gets_its_slice_of_the_flat_settings(tmp_path: Path) -> None:
    settings = Settings.load(
        {
            "IMAGINE_DATA_DIR": str(tmp_path),
            "IMAGINE_DISCORD_TOKEN": "abc.def",
            "IMAGINE_ADMIN_USER_IDS": "[5]",
            "IMAGINE_UPLOAD_LIMIT_BYTES": "1000",
            "IMAGINE_MAX_REPEAT": "2",
            "IMAGINE_MODEL_ALIASES": '{"niji": "/models/niji"}',
            "IMAGINE_POLL_INTERVAL": "0.5",
            "IMAGINE_UPSCALER_MODEL": str(tmp_path / "esrgan.pth"),
            "IMAGINE_QUOTA_IMAGES": "12",
            "IMAGINE_QUOTA_PERIOD": "week",
            "IMAGINE_LEASE_SECONDS": "30",
        }
    )
    storage = settings.storage()
    assert storage.database == settings.database and storage.is_sqlite
    assert storage.data_dir == tmp_path and storage.lease_seconds == 30.0
    assert storage.limits == Limits(images=12, period="week", max_concurrent=3, max_queued=10)

    bot = settings.bot()
    assert bot.admin_user_ids == [5] and bot.upload_limit_bytes == 1000
    assert bot.parser.max_repeat == 2 and bot.parser.models == frozenset({"niji"})
    assert bot.storage == storage
    assert bot.discord_token is not None and "abc.def" not in repr(bot)

    worker = settings.worker()
    assert worker.poll_interval == 0.5 and worker.lease_seconds == 30.0
    assert worker.engine == settings.engine()
    assert worker.engine.model_aliases == {"niji": "/models/niji"}
    assert worker.engine.upscaler_model == tmp_path / "esrgan.pth"

    # Slices are copies: changing one never changes the settings or another slice.
    bot.admin_user_ids.append(6)
    assert settings.admin_user_ids == [5] and settings.bot().admin_user_ids == [5]


def test_a_slice_field_without_a_setting_is_named() -> None:
    @dataclasses.dataclass(frozen=True)
    class Orphan:
        model: str
        no_such_setting: int

    with pytest.raises(TypeError, match=r"Orphan\.no_such_setting has no setting of that name"):
        Settings.load({})._slice(Orphan)


def test_image_store_defaults_to_files_and_reads_the_standard_aws_variables() -> None:
    assert Settings.load({}).image_store_config.store == "file"
    settings = Settings.load(
        {
            "IMAGINE_IMAGE_STORE": "s3://imagine-images/prod",
            "IMAGINE_S3_ENDPOINT_URL": "http://minio:9000",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "very-secret",
            "AWS_DEFAULT_REGION": "eu-central-1",
        }
    )
    config = settings.image_store_config
    assert (config.store, config.endpoint_url) == ("s3://imagine-images/prod", "http://minio:9000")
    assert (config.access_key_id, config.secret_access_key) == ("AKIAEXAMPLE", "very-secret")
    assert config.region == "eu-central-1"
    assert "very-secret" not in repr(settings) and "very-secret" not in repr(config)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bucket", "must be 'file' or 's3://BUCKET[/PREFIX]'; got 'bucket'"),
        ("s3://Images", "bucket name 'Images'"),
        ("s3://images/a/../b", "prefix segment '..'"),
    ],
)
def test_bad_image_store_names_the_setting_and_the_form(value: str, expected: str) -> None:
    with pytest.raises(ValidationError) as failure:
        Settings.load({"IMAGINE_IMAGE_STORE": value})
    assert "image_store" in str(failure.value)
    assert expected in str(failure.value)


def test_operations_settings_reach_their_slices_and_are_checked() -> None:
    settings = Settings.load(
        {
            "IMAGINE_WEB_PORT": "8080",
            "IMAGINE_PUBLIC_URL": "https://imagine.example.org/",
            "IMAGINE_WORKER_HEALTH_PORT": "9200",
            "IMAGINE_IMAGE_RETENTION_DAYS": "30",
            "IMAGINE_LOG_FORMAT": "json",
        }
    )
    bot = settings.bot()
    assert (bot.web_port, bot.public_url, bot.image_retention_days) == (
        8080,
        "https://imagine.example.org",
        30.0,
    )
    assert settings.worker().worker_health_port == 9200
    assert settings.log_format == "json"
    for name, value, message in [
        ("IMAGINE_WEB_PORT", "70000", "a port must be between 0 and 65535, got 70000"),
        ("IMAGINE_PUBLIC_URL", "imagine.example.org", "public_url must start with http://"),
        ("IMAGINE_IMAGE_RETENTION_DAYS", "0", "image_retention_days must be more than 0"),
        ("IMAGINE_LOG_FORMAT", "xml", "log_format"),
    ]:
        with pytest.raises(ValidationError, match=message):
            Settings.load({name: value})
