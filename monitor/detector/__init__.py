"""The cascade detector: a pure state machine over liquidations, mark prices and time."""
