"""A real S3 protocol server on 127.0.0.1 for tests and benchmarks: moto's server mode.

The server runs in a child process (``python -m tests.s3server`` prints its port and serves until
its stdin closes). ``S3Server.start()`` creates an IAM user with an access key allowed to use S3,
then turns request authentication on, so wrong keys and wrong secrets are refused as AWS refuses
them (``InvalidAccessKeyId``, ``SignatureDoesNotMatch``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
START_TIMEOUT = 60.0
_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


@dataclass
class S3Server:
    """A running moto server and the credentials it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[str] = field(repr=False)
    region: str = REGION

    @classmethod
    def start(cls) -> S3Server:
        """Start the server, create a user with S3 rights, and enable authentication."""
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.s3server"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            raise RuntimeError(f"the S3 server did not start (said {line!r})")
        server = cls(f"http://127.0.0.1:{line}", "setup", "setup", process)
        try:
            server._authenticate()
        except BaseException:
            server.stop()
            raise
        return server

    def _authenticate(self) -> None:
        # Authentication is off until reset-auth below, so any key may set the user up.
        iam = _client("iam", self.endpoint_url, "setup", "setup")
        iam.create_user(UserName="imagine")
        iam.put_user_policy(UserName="imagine", PolicyName="s3", PolicyDocument=json.dumps(_POLICY))
        key = iam.create_access_key(UserName="imagine")["AccessKey"]
        self.access_key_id, self.secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=START_TIMEOUT) as response:
            response.read()

    def stop(self) -> None:
        """Stop the server process."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def client(self) -> Any:
        """A boto3 S3 client with the server's credentials (for setting up and inspecting)."""
        return _client("s3", self.endpoint_url, self.access_key_id, self.secret_access_key)

    def new_bucket(self, stem: str = "imagine") -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"{stem}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``."""
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", ()))

    def environ(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Settings environment for an image store in ``bucket``."""
        return {
            "IMAGINE_IMAGE_STORE": f"s3://{bucket}/{prefix}".rstrip("/"),
            "IMAGINE_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
        }


def _client(service: str, endpoint: str, key: str, secret: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def main() -> None:
    """Serve on a free port of 127.0.0.1 until stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    # One line per request would flood the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
