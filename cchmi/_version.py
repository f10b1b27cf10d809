"""The installed distribution's version (one place, read by cchmi and cchmi.info)."""

from importlib import metadata

try:
    __version__ = metadata.version("cchmi")
except metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
