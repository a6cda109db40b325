"""Shared fixtures live in ``tests/plugins``; each area keeps its own conftest."""

pytest_plugins = [
    "tests.plugins.database",
    "tests.plugins.tiny_model",
    "tests.plugins.fake_discord",
    "tests.plugins.s3",
    "tests.plugins.web",
]
