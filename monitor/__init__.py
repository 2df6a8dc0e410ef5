"""liqmon: a self-hosted, real-time liquidation monitor for crypto derivatives venues."""

__version__ = "0.1.0"
