"""Every command's options, with help on each (``liqmon COMMAND --help``)."""

from __future__ import annotations

import argparse

from monitor import __version__
from monitor.cli.analysis import add_analysis_commands
from monitor.cli.fmt import parse_usd

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PORT_IN_USE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = """\
exit codes:
  0    success
  1    runtime failure (also: `parse` read only invalid lines)
  2    usage or config error (the message names the key, the value and what was expected)
  3    a port to listen on is in use (the message names the port and the flag to change it;
       the systemd unit does not restart on it)
  130  stopped by Ctrl-C
"""


def port_arg(text: str) -> int | None:
    """``--metrics-port``: a port, 0 for any free one, or ``none`` for no HTTP endpoint."""
    if text.strip().lower() in ("none", "off", "no"):
        return None
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0-65535 (0: a free port) or none")
    return port


def usd_arg(text: str) -> float:
    try:
        return parse_usd(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a USD amount such as 250000, 250k or 1.5M") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE",
                   help="TOML config file (default: embedded defaults)")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="override [logging] level")
    p.add_argument("--log-format", choices=("text", "json"), help="override [logging] format")


# `run`'s --metrics-port default: the [metrics] section decides.
FROM_CONFIG = -1


def _metrics_port(p: argparse.ArgumentParser, default: int | None, default_help: str) -> None:
    p.add_argument("--metrics-port", type=port_arg, default=default, metavar="PORT",
                   help=f"serve /metrics on this port; 0 picks a free one, none serves no HTTP "
                        f"(default: {default_help})")


def _tape(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tape", nargs="?", type=usd_arg, const=0.0, default=None,
                   metavar="MIN_USD",
                   help="also print every liquidation (from MIN_USD, e.g. 100k) on stdout, one "
                        "line each, beside the per-minute summary")


def _filters(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--venue", action="append", default=[], metavar="ID",
                   help=f"only {what} of this venue id (repeatable)")
    p.add_argument("--coin", action="append", default=[], metavar="COIN",
                   help=f"only {what} of this coin, e.g. BTC (repeatable)")
    p.add_argument("--side", choices=("long", "short"),
                   help=f"only {what} of liquidated longs or shorts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqmon", description="Real-time liquidation monitor for crypto derivatives venues.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"liqmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("run", "run the daemon")
    add_config(p)
    _metrics_port(p, FROM_CONFIG, "[metrics] port, 10841")
    _tape(p)

    p = command("demo", "the simulator and the daemon in one process, on a compressed crash")
    add_config(p)
    p.add_argument("--scenario", default="feb-2026", choices=("feb-2026", "calm"),
                   help="the scenario to play (default feb-2026)")
    p.add_argument("--speed", type=float, default=120.0,
                   help="market seconds per real second (default 120: the 3-hour night in 90 s)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many real seconds (default: when the scenario ends "
                        "and its cascades have resolved)")
    p.add_argument("--faults", default="", help="simulator faults, e.g. drop=5,malformed=0.01")
    _metrics_port(p, 0, "0, a free port, so a daemon on this host is never in the way")
    _tape(p)

    p = command("simulate", "run the exchange simulator alone")
    p.add_argument("--scenario", default="feb-2026", choices=("feb-2026", "calm"),
                   help="the scenario to play (default feb-2026)")
    p.add_argument("--speed", type=float, default=60.0,
                   help="play the scenario this many times faster than real time (default "
                        "60)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765,
                   help="listen port for every simulated venue (default 8765; 0: a free one)")
    p.add_argument("--faults", default="",
                   help="faults to inject, e.g. drop=5,malformed=0.01 (default none)")
    p.add_argument("--clock", choices=("wall", "market"), default="wall",
                   help="wall (default): stamp events with the wall clock, for a daemon "
                        "started separately; market: stamp them with scenario time from the "
                        "start (runs ahead of the wall clock at speeds above 1)")
    p.add_argument("--loop", action="store_true", help="start the scenario again when it ends")
    p.add_argument("--ground-truth", metavar="FILE",
                   help="write the scenario's ground truth (onset, peak, totals) as JSON")
    p.add_argument("--sent", metavar="FILE",
                   help="write what was sent, per venue and side, as JSON when it ends")

    p = command("parse", "raw frames on stdin to normalised events on stdout")
    p.add_argument("--venue", required=True, help="the venue id the frames come from")
    p.add_argument("--instruments", metavar="FILE", action="append", default=[],
                   help="the venue's instrument document as its REST endpoint returns it")
    p.add_argument("--prices", action="store_true", help="also print mark prices")
    p.add_argument("--received-at", type=float, default=None, metavar="SECONDS",
                   help="receipt time to stamp events with (default: now); venues whose rows "
                        "carry no time of their own (BitMEX) use it as the event time")

    p = command("instruments", "instrument metadata")
    isub = p.add_subparsers(dest="instruments_command", required=True, metavar="ACTION")
    f = isub.add_parser("fetch", help="refresh the on-disk instrument cache now")
    add_config(f)
    f.add_argument("--venue", action="append", default=[], help="only this venue (repeatable)")

    p = command("record", "record raw frames to a JSON Lines file (a recorder only: no store, "
                          "alerts or notifications)")
    add_config(p)
    p.add_argument("--out", required=True, metavar="FILE", help=".jsonl or .jsonl.gz")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this long (default: Ctrl-C)")
    _metrics_port(p, None, "none")

    p = command("tail", "a live tape of individual liquidations")
    add_config(p)
    p.add_argument("--from", dest="source", default="auto",
                   choices=("auto", "mqtt", "store", "feeds"),
                   help="mqtt: the running daemon's MQTT liquidation stream; store: the largest "
                        "of each minute in its Redis store; feeds: the venues directly, no "
                        "daemon needed (default auto: the first of these the config allows)")
    _filters(p, what="liquidations")
    p.add_argument("--min-usd", type=usd_arg, default=0.0, metavar="USD",
                   help="only liquidations at least this large, e.g. 100k (default 0)")
    p.add_argument("--json", action="store_true",
                   help="JSON Lines, one normalised event per line, instead of the tape")
    p.add_argument("--count", type=positive_int, default=None, metavar="N",
                   help="stop after N liquidations")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this long")
    _metrics_port(p, None, "none; only with --from feeds")

    p = command("stats", "windows from the configured store as a table")
    add_config(p)
    p.add_argument("--window", default="5m", help="1m, 5m, 15m, 1h, 4h, 24h or Nm/Nh")
    p.add_argument("--by", default="venue,position_side",
                   help="comma-separated: venue, coin, position_side (empty: overall)")
    p.add_argument("--json", action="store_true", help="one JSON document for scripts")
    p.add_argument("--cascades", action="store_true", help="the last cascades instead")
    p.add_argument("--largest", type=positive_int, default=None, metavar="N",
                   help="the N largest liquidations in the window instead (up to 50)")
    _filters(p, what="with --largest, liquidations")
    p.add_argument("--limit", type=int, default=20, help="how many cascades --cascades lists")

    p = command("top", "a live terminal view of the running daemon")
    add_config(p)
    p.add_argument("--metrics-url", metavar="URL",
                   help="the daemon's /metrics (default: from [metrics] host and port)")
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="refresh every this many seconds (default 2)")
    p.add_argument("--once", action="store_true", help="print one view and exit")

    p = command("notify-test", "send a sample alert through the notification channels")
    add_config(p)
    p.add_argument("--channel", action="append", default=[], metavar="NAME",
                   help="only this channel: mqtt or a [notify.webhooks.NAME] (repeatable)")
    p.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS",
                   help="how long to wait for delivery (default 15)")

    p = command("check-config", "validate a config file and print it in full")
    p.add_argument("file", nargs="?", help="TOML config file (default: embedded defaults)")
    p.add_argument("--example", action="store_true",
                   help="print the defaults with every key's help, as in config/liqmon.toml")
    p.add_argument("--reference", action="store_true",
                   help="print the configuration reference (Markdown), as in the docs")

    add_analysis_commands(sub, add_config)
    return parser
