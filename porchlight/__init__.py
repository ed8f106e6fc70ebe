"""Porchlight: a one-button video-consultation kiosk and the clinic hub it talks to."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The installed distribution's version: what a release installs is what the kiosk reports
    # to the update agent's health check.
    __version__ = version("porchlight")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
