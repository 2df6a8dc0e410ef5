"""Side commands beside a running daemon's MQTT connection (the daemon's own channel class,
on a real mosquitto): ``notify-test`` and ``tail --from mqtt`` never knock it off the broker
and never touch its retained status; ``tail`` prints what the daemon publishes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

from monitor.events import Completeness, Liquidation, PositionSide
from monitor.notify.config import MqttConfig
from monitor.notify.mqtt import MqttChannel
from tests.cli.commands import ROOT, cli_env
from tests.fixtures.mosquitto import Mosquitto, retained
from tests.support.daemon import wait_until
from tests.support.timing import T


def _event(n: int, usd: float) -> Liquidation:
    return Liquidation(venue="bybit", instrument="ETHUSDT", coin="ETH",
                       position_side=PositionSide.LONG, price=2600.0, qty_base=usd / 2600,
                       notional_usd=usd, exchange_ts_ms=1_769_904_000_000 + n,
                       received_at=1_769_904_000.1, completeness=Completeness.FULL,
                       event_id=f"bybit:{n}")


def _tail_subscriptions(mosquitto: Mosquitto) -> int:
    """Subscriptions of `liqmon tail` clients the broker has logged."""
    log = mosquitto.log_path.read_text(errors="replace") if mosquitto.log_path.exists() else ""
    return sum(1 for line in log.splitlines()
               if "-tail-" in line and "/v1/liquidations/" in line)


async def _liqmon(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_side_commands_leave_the_daemons_connection_and_status_alone(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    daemon = MqttChannel(MqttConfig(enabled=True, port=mosquitto.port, liquidations=True))
    await daemon.start()
    try:
        await daemon.wait_ready(10 * T)  # returns once connected (not yet connected here)
        assert daemon.connected
        env = cli_env(tmp_path, LIQMON_NOTIFY__MQTT__ENABLED="true",
                      LIQMON_NOTIFY__MQTT__PORT=str(mosquitto.port),
                      LIQMON_NOTIFY__MQTT__LIQUIDATIONS="true")

        test = await _liqmon(env, "notify-test", "--timeout", str(5 * T))
        out, err = await asyncio.wait_for(test.communicate(), 30 * T)
        assert test.returncode == 0, err.decode()
        assert out.decode().startswith("mqtt: delivered test-")

        subscribed_before = _tail_subscriptions(mosquitto)
        tail = await _liqmon(env, "tail", "--json", "--count", "2", "--min-usd", "100k")
        assert tail.stderr is not None and tail.stdout is not None
        banner = await asyncio.wait_for(tail.stderr.readline(), 30 * T)
        assert b"following the daemon's liquidations on MQTT" in banner
        # The banner comes before the subscription, which a loaded machine can take more
        # than the 0.5 s once allowed to place: what is published before it is not tail's.
        await wait_until(lambda: _tail_subscriptions(mosquitto) > subscribed_before, 30 * T)
        for n, usd in enumerate((5e4, 2e5, 3e5, 4e5)):
            daemon.put_liquidation(_event(n, usd))
        out, err = await asyncio.wait_for(tail.communicate(), 30 * T)
        assert tail.returncode == 0, err.decode()
        got = [orjson.loads(line) for line in out.splitlines()]
        assert [e["event_id"] for e in got] == ["bybit:1", "bybit:2"]

        assert daemon.connections == 1  # never knocked off by a client with its id
        status = await retained(mosquitto.port, "liqmon/v1/status")
        assert status == {"liqmon/v1/status": b"online"}
    finally:
        await daemon.aclose()
