"""``liqmon replay`` and ``liqmon backtest``: recorded frames and scenarios through the detector."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import TaskID

import orjson

from monitor.alerts import CascadeAlert, WhaleAlert, alert_log_line
from monitor.config import Config, load_config
from monitor.logs import configure_logging

AddConfig = Callable[[argparse.ArgumentParser], None]


def add_analysis_commands(sub: Any, add_config: AddConfig) -> None:
    p = sub.add_parser("replay", help="recorded raw frames through the live path, on a "
                                      "virtual clock")
    add_config(p)
    p.add_argument("file", help="a recording (.jsonl or .jsonl.gz, as `liqmon record` writes)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None,
                      help="play at this multiple of recorded time")
    pace.add_argument("--as-fast-as-possible", action="store_true",
                      help="no waiting between frames (the default)")
    p.add_argument("--simulated", action="store_true",
                   help="take instrument terms from the simulator's catalogue (recordings of "
                        "`liqmon simulate`)")

    p = sub.add_parser("backtest", help="the detector over a recording or a scenario, as a "
                                        "report")
    add_config(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("file", nargs="?", help="a recording (.jsonl or .jsonl.gz)")
    src.add_argument("--scenario", help="a simulator scenario: calm or feb-2026")
    p.add_argument("--seed", type=int, default=0, help="scenario seed")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stretch or shorten the scenario")
    p.add_argument("--ground-truth", metavar="FILE",
                   help="ground truth of a recorded simulator run (`liqmon simulate "
                        "--ground-truth`)")
    p.add_argument("--simulated", action="store_true",
                   help="instrument terms from the simulator's catalogue")
    p.add_argument("--json", action="store_true", help="one JSON document for scripts")
    p.add_argument("--html", metavar="FILE",
                   help="also write the report with charts as one self-contained HTML file")


class ProgressBar:
    """A rich progress bar on stderr for long replays and backtests, only on a terminal.

    Called as ``progress(done, total)`` (total None while unknown: a replay counts frames as
    it reads them); ``close()`` removes it before the report is printed.
    """

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(TextColumn("frames"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console or Console(stderr=True),
                             transient=True)
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task("frames", total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._task is not None:
            self._bar.stop()


def _progress() -> ProgressBar | None:
    return ProgressBar() if sys.stderr.isatty() else None


def run_analysis(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    configure_logging(args.log_level or "WARNING", args.log_format or config.logging.format)
    if args.command == "replay":
        return asyncio.run(_replay(args, config))
    return _backtest(args, config)


async def _replay(args: argparse.Namespace, config: Config) -> int:
    from monitor.replay import replay

    def show(alert: CascadeAlert | WhaleAlert) -> None:
        print(alert_log_line(alert), flush=True)

    bar = _progress()
    try:
        result = await replay(Path(args.file), config, speed=args.speed,
                              simulated=args.simulated, on_alert=show, progress=bar)
    except (OSError, ValueError) as exc:
        print(f"liqmon replay: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    print(f"{result.frames} frames, {result.liquidations} liquidations "
          f"(${result.total_usd:,.0f}), {result.duplicates} duplicates, "
          f"{result.invalid_frames} invalid, {len(result.cascades)} cascade transitions, "
          f"{len(result.whales)} whale alerts")
    return 0


def _backtest(args: argparse.Namespace, config: Config) -> int:
    from monitor.backtest import run_backtest

    truth = None
    if args.ground_truth:
        truth = orjson.loads(Path(args.ground_truth).read_bytes())
    bar = _progress()
    try:
        report = run_backtest(
            recording=args.file, scenario=args.scenario, config=config, seed=args.seed,
            duration_seconds=args.duration, ground_truth=truth, simulated=args.simulated,
            progress=bar)
    except (OSError, ValueError, KeyError) as exc:
        print(f"liqmon backtest: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError | KeyError) else 1
    finally:
        if bar is not None:
            bar.close()
    if args.html:
        from monitor.web.report import render_html

        try:
            Path(args.html).write_text(
                render_html(report.to_json(), report.series, report.transitions()),
                encoding="utf-8")
        except OSError as exc:
            print(f"liqmon backtest: cannot write {args.html}: {exc}", file=sys.stderr)
            return 1
        print(f"HTML report written to {args.html}", file=sys.stderr)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.to_json()) + b"\n")
    else:
        print(report.render_text())
    return 0
