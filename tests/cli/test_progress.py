"""The backtest and replay progress bar (rich), drawn on a terminal-sized console."""

from __future__ import annotations

import io

from rich.console import Console

from monitor.cli.analysis import ProgressBar


def test_the_bar_counts_frames_and_goes_away() -> None:
    screen = io.StringIO()
    bar = ProgressBar(Console(file=screen, force_terminal=True, width=80))  # as on a tty
    bar(20_000, None)  # a replay: the total is not known yet
    bar(40_000, 40_000)
    bar.close()  # the last refresh draws the final count, then the bar is removed
    drawn = screen.getvalue()
    assert "frames" in drawn and "40000/40000" in drawn
