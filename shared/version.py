"""The running build's version, from the installed package's metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("rooms-platform")
except PackageNotFoundError:  # a source tree that was never installed
    VERSION = "0+unknown"
