"""The ``liqmon`` command line: the only place that configures logging and exits.

Exit codes: 0 success, 2 usage or config errors, 1 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__
from monitor.config import Config, config_to_toml, load_config
from monitor.errors import ConfigError, LiqmonError
from monitor.logs import configure_logging

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXAMPLE_HEADER = """\
# liqmon configuration: every key with its default (made by `liqmon check-config --example`).
# Every key can be overridden from the environment: LIQMON_<SECTION>__<KEY>, for example
# LIQMON_STORE__BACKEND=redis or LIQMON_VENUES__BINANCE_USDM__ENABLED=false.
# A bad value stops liqmon at start with the key, the value and what was expected.

"""


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE",
                   help="TOML config file (default: embedded defaults)")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="override [logging] level")
    p.add_argument("--log-format", choices=("text", "json"), help="override [logging] format")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqmon", description="Real-time liquidation monitor for crypto derivatives venues.")
    parser.add_argument("--version", action="version", version=f"liqmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the daemon")
    _add_config(p)

    p = sub.add_parser("demo", help="the simulator and the daemon in one process")
    _add_config(p)
    p.add_argument("--scenario", default="feb-2026", help="calm or feb-2026 (default)")
    p.add_argument("--speed", type=float, default=120.0,
                   help="market seconds per real second (default 120: the 3-hour night in 90 s)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many real seconds (default: when the scenario ends)")
    p.add_argument("--faults", default="", help="simulator faults, e.g. drop=5,malformed=0.01")

    p = sub.add_parser("simulate", help="run the exchange simulator alone")
    p.add_argument("--scenario", default="feb-2026")
    p.add_argument("--speed", type=float, default=60.0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--faults", default="")
    p.add_argument("--loop", action="store_true", help="start the scenario again when it ends")
    p.add_argument("--ground-truth", metavar="FILE", help="write the scenario's ground truth")
    p.add_argument("--sent", metavar="FILE", help="write what was sent when it ends")

    p = sub.add_parser("parse", help="raw frames on stdin to normalised events on stdout")
    p.add_argument("--venue", required=True)
    p.add_argument("--instruments", metavar="FILE", action="append", default=[],
                   help="the venue's instrument document as its REST endpoint returns it")
    p.add_argument("--prices", action="store_true", help="also print mark prices")
    p.add_argument("--received-at", type=float, default=None, metavar="SECONDS",
                   help="receipt time to stamp events with (default: now); venues whose rows "
                        "carry no time of their own (BitMEX) use it as the event time")

    p = sub.add_parser("instruments", help="instrument metadata")
    isub = p.add_subparsers(dest="instruments_command", required=True, metavar="ACTION")
    f = isub.add_parser("fetch", help="refresh the on-disk instrument cache now")
    _add_config(f)
    f.add_argument("--venue", action="append", default=[], help="only this venue (repeatable)")

    p = sub.add_parser("record", help="record raw frames to a JSON Lines file")
    _add_config(p)
    p.add_argument("--out", required=True, metavar="FILE", help=".jsonl or .jsonl.gz")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS")

    p = sub.add_parser("stats", help="windows from the configured store as a table")
    _add_config(p)
    p.add_argument("--window", default="5m", help="1m, 5m, 15m, 1h, 4h, 24h or Nm/Nh")
    p.add_argument("--by", default="venue,position_side",
                   help="comma-separated: venue, coin, position_side (empty: overall)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--cascades", action="store_true", help="the last cascades instead")
    p.add_argument("--limit", type=int, default=20)

    p = sub.add_parser("top", help="a live terminal view of the running daemon")
    _add_config(p)
    p.add_argument("--metrics-url", metavar="URL",
                   help="the daemon's /metrics (default: from [metrics] host and port)")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="refresh every this many seconds (default 2)")
    p.add_argument("--once", action="store_true", help="print one view and exit")

    p = sub.add_parser("notify-test", help="send a sample alert through the notification channels")
    _add_config(p)
    p.add_argument("--channel", action="append", default=[], metavar="NAME",
                   help="only this channel: mqtt or a [notify.webhooks.NAME] (repeatable)")
    p.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                   help="how long to wait for delivery (default 15)")

    p = sub.add_parser("check-config", help="validate a config file and print it in full")
    p.add_argument("file", nargs="?", help="TOML config file (default: embedded defaults)")
    p.add_argument("--example", action="store_true",
                   help="print the defaults with every key's help, as in config/liqmon.toml")
    p.add_argument("--reference", action="store_true",
                   help="print the configuration reference (Markdown), as in "
                        "docs/configuration.md")

    from monitor.cli.analysis import add_analysis_commands

    add_analysis_commands(sub, _add_config)
    return parser


def _load(args: argparse.Namespace) -> Config:
    config = load_config(getattr(args, "config", None))
    level = getattr(args, "log_level", None) or config.logging.level
    fmt = getattr(args, "log_format", None) or config.logging.format
    configure_logging(level, fmt)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"liqmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        # The reader went away (`liqmon backtest | head`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except LiqmonError as exc:
        print(f"liqmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "check-config":
        config = load_config(args.file)
        if args.reference:
            from monitor.cli.reference import reference_markdown

            print(reference_markdown(config), end="")
            return EXIT_OK
        if args.example:
            print(EXAMPLE_HEADER + config_to_toml(config, comments=True), end="")
            return EXIT_OK
        print(config_to_toml(config), end="")
        print(f"# {args.file or 'embedded defaults'}: valid", file=sys.stderr)
        return EXIT_OK
    if command == "parse":
        from monitor.cli.parse import run_parse

        configure_logging("WARNING", "text")
        return run_parse(args.venue, [Path(p) for p in args.instruments], args.prices,
                         args.received_at)
    if command in ("replay", "backtest"):
        from monitor.cli.analysis import run_analysis

        return run_analysis(args)
    if command == "simulate":
        from monitor.cli.demo import run_simulate

        configure_logging("INFO", "text")
        return asyncio.run(run_simulate(args))
    config = _load(args)
    if command == "run":
        from monitor.app import run_service

        return asyncio.run(run_service(config, args.config, log_level_override=args.log_level))
    if command == "top":
        from monitor.cli.top import run_top

        return asyncio.run(run_top(config, args))
    if command == "demo":
        from monitor.cli.demo import run_demo

        return asyncio.run(run_demo(config, args))
    if command == "record":
        from monitor.cli.demo import run_record

        return asyncio.run(run_record(config, Path(args.out), args.duration))
    if command == "instruments":
        from monitor.cli.parse import run_instruments_fetch

        return asyncio.run(run_instruments_fetch(config, args.venue))
    if command == "stats":
        from monitor.cli.stats import run_stats

        return asyncio.run(run_stats(config, args))
    if command == "notify-test":
        from monitor.cli.notify import run_notify_test

        return asyncio.run(run_notify_test(config, args.channel, args.timeout))
    raise AssertionError(f"unhandled command {command}")
