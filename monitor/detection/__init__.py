"""The cascade detector's parts: windows, prices, figures, per-scope machines."""
