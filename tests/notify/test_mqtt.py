"""The MQTT channel against a real mosquitto: topics, retained state, status, TLS, auth."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts import AlertState, Severity, alert_payload
from monitor.cli.notify import run_notify_test
from monitor.config import Config
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.notify.config import MqttConfig, NotifyConfig, WebhookConfig
from monitor.notify.notifier import Notifier
from tests.fixtures.mosquitto import Certs, Mosquitto, Subscriber, retained
from tests.support.alerts import cascade, running_notifier, whale
from tests.support.daemon import wait_until
from tests.support.timing import T

FAST = {"retry_initial_seconds": 0.02, "retry_max_seconds": 0.2}


def mqtt_notifier(**mqtt: object
                  ) -> AbstractAsyncContextManager[tuple[Notifier, CollectorRegistry]]:
    config = NotifyConfig(mqtt=MqttConfig(enabled=True, **mqtt), **FAST)  # type: ignore[arg-type]
    return running_notifier(config)


async def connected(hub: Notifier) -> None:
    mqtt = hub.mqtt
    assert mqtt is not None
    await wait_until(lambda: mqtt.connected, 5 * T)


async def test_transitions_state_and_status(mosquitto: Mosquitto) -> None:
    alert = cascade(severity=Severity.CRITICAL)
    async with Subscriber(mosquitto.port, ["liqmon/#"]) as sub:
        async with mqtt_notifier(port=mosquitto.port, client_id="t1") as (hub, _reg):
            await connected(hub)
            hub.publish(alert)
            assert await hub.drain(5 * T) == 0
            seen = await retained(mosquitto.port, "liqmon/#")
            assert seen["liqmon/v1/status"] == b"online"
            state = seen["liqmon/v1/state/cascade/coin/eth/long"]
            assert orjson.loads(state) == alert_payload(alert)
            hub.publish(dataclasses.replace(alert, status=AlertState.RESOLVED))
            assert await hub.drain(5 * T) == 0
            seen = await retained(mosquitto.port, "liqmon/#")
            assert "liqmon/v1/state/cascade/coin/eth/long" not in seen
        await sub.wait_for(lambda ms: any(m.payload == b"offline" for m in ms), 5 * T)
    events = sub.on("liqmon/v1/alerts/")
    assert [(m.topic, orjson.loads(m.payload)["status"]) for m in events] == [
        ("liqmon/v1/alerts/cascade/coin/eth/long", "firing"),
        ("liqmon/v1/alerts/cascade/coin/eth/long", "resolved")]
    first = events[0]
    assert first.qos == 1 and not first.retain
    assert first.content_type == "application/json" and first.expiry == 3600
    assert first.user == {"schema": "liqmon.alert/v1", "id": alert.id}
    states = sub.on("liqmon/v1/state/")
    assert [m.payload == b"" for m in states] == [False, True]
    assert [m.payload for m in sub.on("liqmon/v1/status")] == [b"online", b"offline"]
    # A clean stop leaves `offline` retained: said by the daemon, not by the will.
    assert (await retained(mosquitto.port, "liqmon/v1/status"))["liqmon/v1/status"] == b"offline"


async def test_whales_and_large_liquidations(mosquitto: Mosquitto) -> None:
    def liquidation(usd: float, n: int) -> Liquidation:
        return Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.SHORT, 80_000.0,
                           usd / 80_000.0, usd, 1_769_904_000_000, 1_769_904_000.1,
                           Completeness.FULL, f"by-{n}")

    async with Subscriber(mosquitto.port, ["root/#"]) as sub:
        async with mqtt_notifier(port=mosquitto.port, root="root", liquidations=True,
                                 liquidations_min_usd=50_000) as (hub, _reg):
            await connected(hub)
            assert hub.wants_liquidations
            hub.publish(whale())
            for n, usd in enumerate([10_000, 60_000, 49_999, 1e6]):
                hub.publish_liquidation(liquidation(usd, n))
            await sub.wait_for(lambda ms: len(sub.on("root/v1/liquidations/")) == 2
                               and sub.on("root/v1/alerts/whale/"), 5 * T)
    assert sub.on("root/v1/alerts/whale/")[0].topic == "root/v1/alerts/whale/eth"
    large = sub.on("root/v1/liquidations/")
    assert {m.topic for m in large} == {"root/v1/liquidations/bybit/btc"}
    assert [orjson.loads(m.payload)["notional_usd"] for m in large] == [60_000, 1e6]
    assert orjson.loads(large[0].payload) == liquidation(60_000, 1).to_json_dict()
    assert large[0].qos == 0


async def test_minimum_severity_and_no_whales(mosquitto: Mosquitto) -> None:
    async with Subscriber(mosquitto.port, ["liqmon/v1/alerts/#"]) as sub:
        async with mqtt_notifier(port=mosquitto.port, min_severity="critical",
                                 whales=False) as (hub, _reg):
            await connected(hub)
            hub.publish(cascade(id="cas-w"))
            hub.publish(whale())
            hub.publish(cascade(id="cas-c", severity=Severity.CRITICAL))
            assert await hub.drain(5 * T) == 0
        await sub.wait_for(lambda ms: len(ms) >= 1, 5 * T)
        await asyncio.sleep(0.1)
    assert [orjson.loads(m.payload)["id"] for m in sub.messages] == ["cas-c"]


async def test_an_alert_reaches_the_broker_in_the_step_that_raises_it(
    mosquitto: Mosquitto,
) -> None:
    """No later turn of the event loop is needed to write an alert out: a subscriber on a
    thread of its own gets it while this loop is held right after ``publish``, for a burst
    as well as for a lone alert."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[str] = []
    arrived = threading.Event()
    subscribed = threading.Event()

    def on_message(client: object, userdata: object, message: paho.MQTTMessage) -> None:
        got.append(orjson.loads(message.payload)["id"])
        arrived.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    sub.on_message = on_message
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_connect = lambda client, *args: client.subscribe("liqmon/v1/alerts/#", qos=1)
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    try:
        assert subscribed.wait(5 * T)
        async with mqtt_notifier(port=mosquitto.port, client_id="t-eager") as (hub, _reg):
            await connected(hub)
            for burst in (["whl-a"], ["whl-b", "whl-c", "whl-d"]):
                arrived.clear()
                for alert_id in burst:
                    hub.publish(dataclasses.replace(whale(), id=alert_id))
                deadline = time.monotonic() + 5 * T
                while len(got) < {1: 1, 3: 4}[len(burst)] and time.monotonic() < deadline:
                    arrived.wait(0.05)  # blocks the loop: only the publishing step wrote
                assert got[-len(burst):] == burst
                assert await hub.drain(5 * T) == 0
    finally:
        sub.loop_stop()
        sub.disconnect()


async def test_mqtt_3_1_1_works_without_properties(mosquitto: Mosquitto) -> None:
    async with Subscriber(mosquitto.port, ["liqmon/v1/alerts/#"]) as sub:
        async with mqtt_notifier(port=mosquitto.port, protocol="3.1.1") as (hub, _reg):
            await connected(hub)
            hub.publish(cascade())
            assert await hub.drain(5 * T) == 0
        await sub.wait_for(lambda ms: len(ms) == 1, 5 * T)
    assert sub.messages[0].content_type is None


async def test_a_broker_that_lost_everything_gets_the_state_back(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "volatile", persistence=False)
    broker.start()
    try:
        async with mqtt_notifier(port=broker.port) as (hub, reg):
            await connected(hub)
            hub.publish(cascade())
            assert await hub.drain(5 * T) == 0
            broker.kill()
            mqtt = hub.mqtt
            assert mqtt is not None
            # Polled: how soon the client sees the broker gone depends on the machine's load.
            await wait_until(lambda: not mqtt.connected, 5 * T)
            hub.publish(whale())  # queued while the broker is away
            await wait_until(lambda: reg.get_sample_value(
                "liqmon_notify_up", {"channel": "mqtt"}) == 0, 5 * T)
            broker.start()
            async with Subscriber(broker.port, ["liqmon/#"]) as sub:
                assert await hub.drain(10 * T) == 0
                await sub.wait_for(lambda ms: sub.on("liqmon/v1/alerts/whale"), 5 * T)
            seen = await retained(broker.port, "liqmon/#")
            assert seen["liqmon/v1/status"] == b"online"
            assert orjson.loads(seen["liqmon/v1/state/cascade/coin/eth/long"])["id"] == (
                cascade().id)
            assert hub.mqtt.connections == 2
    finally:
        broker.kill()


async def test_tls_and_password_from_a_credentials_file(
    mosquitto_factory: Callable[..., Mosquitto], mqtt_certs: Certs, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto_factory(users={"liqmon": "pa55-word"}, certs=mqtt_certs)
    assert broker.tls_port is not None
    (tmp_path / "mqtt-password").write_text("pa55-word\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    caplog.set_level(logging.DEBUG)
    tls = {"port": broker.tls_port, "tls": True, "ca_file": str(mqtt_certs.ca),
           "username": "liqmon", "password_file": "mqtt-password"}
    async with mqtt_notifier(**tls) as (hub, _reg):
        await connected(hub)
        hub.publish(cascade())
        assert await hub.drain(5 * T) == 0
    assert "pa55-word" not in caplog.text
    # A wrong password is refused; the refusal is logged, the password is not.
    (tmp_path / "mqtt-password").write_text("wrong-secret\n")
    caplog.clear()
    async with mqtt_notifier(**tls) as (hub, reg):
        hub.publish(cascade())
        assert await hub.drain(0.5) == 1
        assert reg.get_sample_value("liqmon_notify_up", {"channel": "mqtt"}) == 0
    assert "mqtt: connection to 127.0.0.1" in caplog.text
    assert "wrong-secret" not in caplog.text
    # Without the CA the certificate is not trusted.
    async with mqtt_notifier(**{**tls, "ca_file": ""}) as (hub, _reg):
        hub.publish(cascade())
        assert await hub.drain(0.5) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_notify_test_command(mosquitto: Mosquitto,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    notify = NotifyConfig(mqtt=MqttConfig(enabled=True, port=mosquitto.port),
                          webhooks={"off": WebhookConfig(enabled=False, url="http://x")})
    async with Subscriber(mosquitto.port, ["liqmon/#"]) as sub:
        assert await run_notify_test(Config(notify=notify), [], 5 * T) == 0
        await sub.wait_for(lambda ms: sub.on("liqmon/v1/alerts/cascade/test/long"), 5 * T)
    assert capsys.readouterr().out.startswith("mqtt: delivered test-")
    assert not sub.on("liqmon/v1/state/")
    down = NotifyConfig(mqtt=MqttConfig(enabled=True, port=9), **FAST)  # type: ignore[arg-type]
    assert await run_notify_test(Config(notify=down), ["mqtt"], 0.5) == 1
    assert "mqtt: NOT delivered: not connected" in capsys.readouterr().out


def test_notify_test_exit_codes(mosquitto: Mosquitto, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    config = tmp_path / "liqmon.toml"
    config.write_text(f"[notify.mqtt]\nenabled = true\nport = {mosquitto.port}\n")
    assert main(["notify-test", "--config", str(config), "--timeout", str(5 * T)]) == 0
    assert "mqtt: delivered test-" in capsys.readouterr().out
    assert main(["notify-test", "--config", str(config), "--channel", "nope"]) == 2
    assert "an enabled channel: mqtt" in capsys.readouterr().err
