"""The eager-write hook on aiomqtt's private paho client, without a broker."""

from __future__ import annotations

import logging
from typing import Any

import aiomqtt
import pytest

from monitor.notify.mqtt_publish import EagerWrites


class FakePaho:
    """paho's side of the hook: what aiomqtt registers, and a socket that takes all or part."""

    def __init__(self, takes_all: bool) -> None:
        self.takes_all = takes_all
        self.written = 0
        self.deferred: list[Any] = []
        self.on_socket_register_write = self._deferred

    def _deferred(self, client: Any, userdata: Any, sock: Any) -> None:
        self.deferred.append(sock)

    def loop_write(self) -> None:
        self.written += 1

    def want_write(self) -> bool:
        return not self.takes_all


class FakeClient:
    def __init__(self, paho: FakePaho) -> None:
        self._client = paho


@pytest.mark.parametrize("takes_all", [True, False])
async def test_a_publish_started_here_is_written_in_the_same_step(takes_all: bool) -> None:
    paho = FakePaho(takes_all)
    eager = EagerWrites()
    eager.install(FakeClient(paho))  # type: ignore[arg-type]
    # Outside a publish that this channel starts, paho's request goes the usual way.
    paho.on_socket_register_write(paho, None, "sock")
    assert (paho.written, paho.deferred) == (0, ["sock"])

    async def publish() -> None:
        paho.on_socket_register_write(paho, None, "sock")

    await eager.start(publish())
    assert paho.written == 1
    # Registered as a writer again only when the socket did not take the whole packet.
    assert paho.deferred == ["sock"] if takes_all else ["sock", "sock"]


def test_an_aiomqtt_without_the_paho_hook_is_said_under_the_channels_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.notify.mqtt")
    EagerWrites().install(object())  # type: ignore[arg-type]
    assert [(r.name, r.levelno) for r in caplog.records] == [
        ("monitor.notify.mqtt", logging.INFO)]
    assert "no paho socket hook" in caplog.text


async def test_the_installed_aiomqtt_has_the_hook(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor.notify.mqtt")
    client = aiomqtt.Client("127.0.0.1", 1883)  # not connected: only its paho client is read
    deferred = client._client.on_socket_register_write
    EagerWrites().install(client)
    assert "no paho socket hook" not in caplog.text
    assert client._client.on_socket_register_write is not deferred
