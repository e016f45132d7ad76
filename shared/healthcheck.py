"""The container's health check: exit 0 when this process's /readyz answers 200.

`python -m shared.healthcheck` (the Dockerfile's exec-form HEALTHCHECK): no shell,
no curl in the image; it reads the port from the same PORT the process uses."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = int(os.environ.get("PORT", "8080"))
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
