"""Porchlight: a one-button video-consultation kiosk and the clinic hub it talks to."""

__version__ = "0.1.0"
