"""Pytest fixtures: a real S3 protocol server on 127.0.0.1 (moto's server mode) and buckets.

``s3_server`` starts once per session, with authentication on; ``s3_bucket`` is a fresh, empty
bucket per test; ``s3_environ`` is the settings environment for an image store in it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3server import S3Server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The S3 server for this test session."""
    server = S3Server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket."""
    return s3_server.new_bucket()


@pytest.fixture
def s3_environ(s3_server: S3Server, s3_bucket: str) -> dict[str, str]:
    """``IMAGINE_IMAGE_STORE`` and the ``AWS_*`` variables for ``s3_bucket`` under ``images/``."""
    return s3_server.environ(s3_bucket, "images")
