"""mirrorci: publish git releases to mirrors and check them out fast."""

__version__ = "0.1.0"
