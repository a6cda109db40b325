"""Wait until a health URL answers 200 (``/readyz``), for systemd's ExecStartPost.

Usage: python wait_ready.py URL [SECONDS]. Exit 0 once ready, 1 when SECONDS (default 300)
pass first: systemd then marks the unit failed and restarts it.
"""

import sys
import time
import urllib.error
import urllib.request


def main() -> int:
    """Poll the URL every second until it answers 200 or time runs out."""
    url = sys.argv[1]
    deadline = time.monotonic() + (float(sys.argv[2]) if len(sys.argv) > 2 else 300.0)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return 0
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read(500).decode(errors='replace')}"
        except OSError as exc:
            last = str(exc)
        time.sleep(1)
    print(f"{url} is not ready: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
