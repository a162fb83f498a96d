"""The installed version of cw_glbatch."""

from importlib import metadata

try:
    __version__ = metadata.version("cw-glbatch")
except metadata.PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0.0.0"
