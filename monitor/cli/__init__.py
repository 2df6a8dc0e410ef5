"""The ``liqmon`` command line: the only place that configures logging and exits.

Exit codes (``liqmon --help`` lists them): 0 success, 1 runtime failure, 2 usage or config
errors, 3 a port to listen on is in use (never worth a restart), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from monitor.cli.options import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PORT_IN_USE,
    EXIT_USAGE,
    FROM_CONFIG,
    build_parser,
)
from monitor.config import Config, config_to_toml, load_config
from monitor.errors import ConfigError, LiqmonError, PortInUse
from monitor.logs import configure_logging

log = logging.getLogger(__name__)

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_PORT_IN_USE", "EXIT_USAGE", "build_parser", "main"]
EXAMPLE_HEADER = """\
# liqmon configuration: every key with its default (made by `liqmon check-config --example`).
# Every key can be overridden from the environment: LIQMON_<SECTION>__<KEY>, for example
# LIQMON_STORE__BACKEND=redis or LIQMON_VENUES__BINANCE_USDM__ENABLED=false.
# A bad value stops liqmon at start with the key, the value and what was expected.

"""


# A tape on stdout reads best with only warnings on stderr.
QUIET_COMMANDS = ("tail",)


def _load(args: argparse.Namespace) -> Config:
    config = load_config(getattr(args, "config", None))
    quiet = "WARNING" if args.command in QUIET_COMMANDS else None
    level = getattr(args, "log_level", None) or quiet or config.logging.level
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
    except PortInUse as exc:
        flag = "--port" if args.command == "simulate" else "--metrics-port (or [metrics] port)"
        print(f"liqmon: {exc} (another liqmon?); choose another with {flag}", file=sys.stderr)
        return EXIT_PORT_IN_USE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`liqmon backtest | head`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except LiqmonError as exc:
        print(f"liqmon: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _diagnosed(config: Config, work: Coroutine[Any, Any, int]) -> int:
    """``work`` with the startup diagnosis watching the feeds' first attempts."""
    from monitor.cli.diagnosis import install

    install(config)
    return await work


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
        from monitor.cli.simulate import run_simulate

        configure_logging("INFO", "text")
        return asyncio.run(run_simulate(args))
    config = _load(args)
    if command == "run":
        from monitor.app import run_service
        from monitor.cli.tape import TapeFilter, TapePrinter

        if args.metrics_port is None:
            raise ConfigError("--metrics-port", "none",
                              "a port: the daemon always serves /metrics unless "
                              "[metrics] enabled = false")
        tape = None if args.tape is None else TapePrinter(TapeFilter(min_usd=args.tape))
        port = None if args.metrics_port == FROM_CONFIG else args.metrics_port
        return asyncio.run(_diagnosed(config, run_service(
            config, args.config, log_level_override=args.log_level, metrics_port=port,
            on_liquidation=tape)))
    if command == "top":
        from monitor.cli.top import run_top

        return asyncio.run(run_top(config, args))
    if command == "demo":
        from monitor.cli.demo import run_demo

        return asyncio.run(run_demo(config, args))
    if command == "record":
        from monitor.cli.side import run_record

        return asyncio.run(_diagnosed(config, run_record(config, Path(args.out), args.duration,
                                                         args.metrics_port)))
    if command == "instruments":
        from monitor.cli.parse import run_instruments_fetch

        return asyncio.run(run_instruments_fetch(config, args.venue))
    if command == "tail":
        from monitor.cli.tail import run_tail

        return asyncio.run(run_tail(config, args))
    if command == "stats":
        from monitor.cli.stats import run_stats

        return asyncio.run(run_stats(config, args))
    if command == "notify-test":
        from monitor.cli.notify import run_notify_test

        return asyncio.run(run_notify_test(config, args.channel, args.timeout))
    raise AssertionError(f"unhandled command {command}")
