"""The MQTT channel, on aiomqtt (with ``mqtt_publish.py``, the only modules that import it).

The topic tree, and the messages each alert becomes on it, are in ``mqtt_topics.py``. With
MQTT 5 every message has a content type, the alerts and liquidations a message expiry, and the
alerts ``schema`` and ``id`` user properties.

The connection: a stable client id, clean start, a retained ``offline`` last will and a
retained ``online`` birth message, then every current cascade state again (a broker that lost
its retained messages gets them back). While the cascade lasts its state is re-published
before its expiry, so the state of a daemon that died mid-cascade goes away by itself. The
loop reconnects with capped backoff; ``send`` fails at once while disconnected and the
outbox retries. The password (inline or from a credentials file) is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.alerts import SCHEMA, AlertState, CascadeAlert, WhaleAlert, alert_payload
from monitor.backoff import Backoff
from monitor.errors import ConfigError, NotifyError
from monitor.events import Liquidation
from monitor.notify.config import MqttConfig, read_secret
from monitor.notify.feed_notice import FeedNotice
from monitor.notify.mqtt_publish import Connection, EagerWrites, Publishing, confirm
from monitor.notify.mqtt_topics import TEST_SCOPE, MqttMessage, Topics, messages

log = logging.getLogger(__name__)

CHANNEL_NAME = "mqtt"
JSON = "application/json"
TEXT = "text/plain"
LIQUIDATION_QUEUE = 10_000


class MqttChannel:
    def __init__(self, config: MqttConfig, *, status: bool = True) -> None:
        """``status=False``: no last will, no online/offline message. A side command
        (``notify-test``) must leave the running daemon's retained status alone."""
        self.name = CHANNEL_NAME
        self.config = config
        self._status = status
        self.topics = Topics(config.root)
        self.client_id = config.effective_client_id()
        self._v5 = config.protocol == "5"
        self._password = read_secret(config.password, config.password_file,
                                     "notify.mqtt.password_file") or None
        self._tls = self._tls_context() if config.tls else None
        self._state: dict[str, bytes] = {}
        self._conn: Connection | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._liqs: deque[Liquidation] = deque(maxlen=LIQUIDATION_QUEUE)
        self._liq_wake = asyncio.Event()
        self.liquidations_published = 0
        self.liquidations_skipped = 0
        self.connections = 0
        self._eager = EagerWrites()

    def _tls_context(self) -> ssl.SSLContext:
        c = self.config
        try:
            ctx = ssl.create_default_context(cafile=c.ca_file or None)
            if c.cert_file:
                ctx.load_cert_chain(c.cert_file, c.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("notify.mqtt.ca_file", c.ca_file or c.cert_file,
                              f"readable PEM files ({exc})") from exc
        if c.tls_insecure:
            ctx.check_hostname = False
        return ctx

    # -- what the hub calls -------------------------------------------------------------------
    def note(self, alert: CascadeAlert | FeedNotice) -> None:
        """Keep the current state of ``alert``'s scope and side (of a feed notice: its
        venue's feed, retained whether down or up); synchronous, at detection."""
        if isinstance(alert, FeedNotice):
            self._state[self.topics.feed_state(alert.venue)] = orjson.dumps(alert.payload())
            return
        if alert.scope == TEST_SCOPE:
            return
        side = alert.position_side.value
        topic = self.topics.state(alert.scope, side)
        if alert.promoted_from is not None:
            # It went market-wide: it lives on under the global scope only.
            self._state.pop(self.topics.state(alert.promoted_from, side), None)
        if alert.status is AlertState.RESOLVED:
            self._state.pop(topic, None)
        else:
            self._state[topic] = orjson.dumps(alert_payload(alert))

    def put_liquidation(self, event: Liquidation) -> None:
        # QoS 0 telemetry: when the queue is full the oldest goes (deque maxlen).
        self._liqs.append(event)
        self._liq_wake.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- Channel protocol ---------------------------------------------------------------------
    def render(self, alert: CascadeAlert | WhaleAlert | FeedNotice) -> Sequence[MqttMessage]:
        return messages(self.topics, alert)

    def begin(self, message: MqttMessage) -> Awaitable[None]:
        """Write ``message`` to the broker's socket now, in the caller's step; await the
        result for the PUBACK (NotifyError on a timeout or the loss of the connection).
        Raises NotifyError at once while disconnected."""
        conn = self._conn
        if conn is None or conn.lost.is_set():
            raise NotifyError("not connected to the MQTT broker")
        if message.state:
            payload = self._state.get(message.topic, b"")
            expiry = self.config.state_expiry_seconds if payload else 0
        else:
            payload, expiry = message.payload, self.config.message_expiry_seconds
        properties = self._properties(JSON, expiry, message.alert_id)
        return Publishing(conn, self._eager.start(conn.client.publish(
            message.topic, payload, qos=1, retain=message.retain, properties=properties,
            timeout=self.config.publish_timeout_seconds)))

    async def send(self, message: MqttMessage) -> None:
        await self.begin(message)

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        if self._connected.is_set():
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._connected.wait()

    # -- publishing ---------------------------------------------------------------------------
    def _properties(self, content_type: str, expiry: int, alert_id: str = "") -> Properties | None:
        if not self._v5:
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = content_type
        if expiry > 0:
            props.MessageExpiryInterval = expiry
        if alert_id:
            props.UserProperty = [("schema", SCHEMA), ("id", alert_id)]
        return props

    def _publish(self, conn: Connection, topic: str, payload: bytes, qos: int,
                 retain: bool, properties: Properties | None) -> Coroutine[Any, Any, None]:
        """Write the PUBLISH now; the coroutine returned waits for the PUBACK, the publish
        timeout, or the connection's loss."""
        return confirm(conn, self._eager.start(conn.client.publish(
            topic, payload, qos=qos, retain=retain, properties=properties,
            timeout=self.config.publish_timeout_seconds)))

    # -- connection lifecycle -----------------------------------------------------------------
    def background(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The connection loop and the liquidation publisher, by task name."""
        return {"notify-mqtt-connection": self._connection_loop,
                "notify-mqtt-liquidations": self._liquidation_loop}

    async def start(self) -> None:
        """Run :meth:`background` in tasks of its own (outside the daemon's TaskGroup)."""
        self._tasks = [asyncio.create_task(run(), name=name)
                       for name, run in self.background().items()]

    def _make_client(self) -> aiomqtt.Client:
        c = self.config
        will_props = None
        if self._v5:
            will_props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
            will_props.ContentType = TEXT
        client = aiomqtt.Client(
            c.host, c.port, identifier=self.client_id,
            username=c.username or None, password=self._password,
            protocol=aiomqtt.ProtocolVersion.V5 if self._v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(self.topics.status, b"offline", qos=1, retain=True,
                              properties=will_props) if self._status else None,
            keepalive=c.keepalive_seconds, timeout=c.connect_timeout_seconds,
            tls_context=self._tls,
            logger=logging.getLogger(__name__ + ".paho"),
            # Alerts are small and latency matters: no Nagle delay.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        self._eager.install(client)
        return client

    async def _connection_loop(self) -> None:
        backoff = Backoff(0.2, 15.0)
        where = f"{self.config.host}:{self.config.port}"
        failing = False
        while not self._closing:
            client = self._make_client()
            conn = Connection(client)
            try:
                async with client:
                    self._conn = conn
                    await self._announce(conn)
                    self.connections += 1
                    self._connected.set()
                    backoff.reset()
                    log.info("mqtt: connected to %s as %s", where, self.client_id)
                    failing = False
                    await self._hold(conn)
            except aiomqtt.MqttError as exc:
                if not failing:
                    log.warning("mqtt: connection to %s failed or was lost: %s; reconnecting",
                                where, exc)
                    failing = True
            except NotifyError as exc:
                if not failing:
                    log.warning("mqtt: %s; reconnecting", exc)
                    failing = True
            finally:
                conn.lost.set()
                self._connected.clear()
                if self._conn is conn:
                    self._conn = None
            if not self._closing:
                await asyncio.sleep(backoff.next_delay())

    async def _announce(self, conn: Connection) -> None:
        """Birth message, then every current state (a restarted broker may have lost them)."""
        if self._status:
            await self._publish(conn, self.topics.status, b"online", 1, True,
                                self._properties(TEXT, 0))
        await self._republish_states(conn)

    async def _republish_states(self, conn: Connection) -> None:
        expiry = self.config.state_expiry_seconds
        for topic, payload in list(self._state.items()):
            await self._publish(conn, topic, payload, 1, True, self._properties(JSON, expiry))

    async def _hold(self, conn: Connection) -> None:
        """Until the connection drops (the message iterator raises MqttError); re-publish the
        states before they expire."""
        expiry = self.config.state_expiry_seconds
        refresh = expiry / 3 if expiry > 0 else None
        messages = conn.client.messages.__aiter__()
        while True:
            try:
                async with asyncio.timeout(refresh):
                    await messages.__anext__()
            except TimeoutError:
                await self._republish_states(conn)

    async def _liquidation_loop(self) -> None:
        expiry = min(self.config.message_expiry_seconds, 300)
        while True:
            await self._liq_wake.wait()
            self._liq_wake.clear()
            while self._liqs:
                event = self._liqs.popleft()
                conn = self._conn
                if conn is None or conn.lost.is_set():
                    self.liquidations_skipped += 1 + len(self._liqs)
                    self._liqs.clear()
                    break
                try:
                    await self._eager.start(conn.client.publish(
                        self.topics.liquidation(event.venue, event.coin), event.to_json(),
                        qos=0, properties=self._properties(JSON, expiry),
                        timeout=self.config.publish_timeout_seconds))
                    self.liquidations_published += 1
                except aiomqtt.MqttError:
                    self.liquidations_skipped += 1

    async def aclose(self) -> None:
        """Say ``offline`` (retained) and disconnect cleanly, so the will is not needed.
        Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and not conn.lost.is_set() and self._status:
            try:
                await self._publish(conn, self.topics.status, b"offline", 1, True,
                                    self._properties(TEXT, 0))
            except NotifyError as exc:
                log.warning("mqtt: could not publish offline status: %s", exc)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
        self._tasks = []


async def liquidation_stream(config: MqttConfig, client_id: str) -> AsyncIterator[Liquidation]:
    """The daemon's liquidations as it publishes them (``liqmon tail``): a plain subscriber
    under its own client id, without a will or a status message."""
    channel = MqttChannel(dataclasses.replace(config, client_id=client_id), status=False)
    topic = f"{channel.topics.base}/liquidations/#"
    try:
        async with channel._make_client() as client:
            await client.subscribe(topic, qos=0)
            async for message in client.messages:
                payload = message.payload
                try:
                    if not isinstance(payload, bytes | bytearray | str):
                        raise TypeError(f"payload of type {type(payload).__name__}")
                    yield Liquidation.from_json_dict(orjson.loads(payload))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    log.warning("mqtt: %s is not a liquidation: %s", message.topic, exc)
    except aiomqtt.MqttError as exc:
        raise NotifyError(f"cannot follow {topic} on {config.host}:{config.port}: {exc}") from None
