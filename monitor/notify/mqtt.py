"""The MQTT channel, on aiomqtt (the only module that imports it).

Topics, under a configurable root (default ``liqmon``), lower case, one ``/`` level each::

    <root>/v1/status                                    online | offline, retained; the last will
    <root>/v1/alerts/cascade/<scope>/<position_side>    every cascade transition, QoS 1
    <root>/v1/state/cascade/<scope>/<position_side>     the cascade's current state, retained,
                                                        cleared (empty retained) when it resolves
    <root>/v1/alerts/whale/<coin>                       whale alerts, QoS 1
    <root>/v1/liquidations/<venue>/<coin>               optional, liquidations above a size, QoS 0

``<scope>`` is ``global``, ``coin/<coin>`` or ``venue/<venue>`` (the detector's ``coin:ETH``
with the colon as a topic level), so ``.../cascade/coin/#`` follows every coin. The position
side is a level of its own because a scope can have a long and a short cascade at once, each
with its own state. A cascade that goes market-wide keeps its id and continues under
``global`` (its payload's ``promoted_from`` names the scope it started in); the state of that
first scope is cleared then. Alert payloads are ``alerts.alert_payload`` as JSON;
liquidations are the normalised event's JSON. With MQTT 5 every message has a content type,
the alerts and liquidations a message expiry, and the alerts ``schema`` and ``id`` user
properties.

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
import re
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
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
from monitor.notify.eager import Started
from monitor.notify.feed_notice import FeedNotice

log = logging.getLogger(__name__)

CHANNEL_NAME = "mqtt"
# notify-test's sample alerts use this scope: they get an event but never a retained state.
TEST_SCOPE = "test"
JSON = "application/json"
TEXT = "text/plain"
LIQUIDATION_QUEUE = 10_000
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def segment(text: str) -> str:
    """One topic level: lower case, nothing but ``[a-z0-9._-]`` (no ``+``, ``#``, ``/``)."""
    return _UNSAFE.sub("_", text.lower()) or "_"


def scope_path(scope: str) -> str:
    """``global`` → ``global``; ``coin:ETH`` → ``coin/eth``; ``venue:bybit`` → ``venue/bybit``."""
    kind, _, name = scope.partition(":")
    return f"{segment(kind)}/{segment(name)}" if name else segment(kind)


@dataclass(frozen=True, slots=True)
class Topics:
    root: str

    @property
    def base(self) -> str:
        return f"{self.root.strip('/')}/v1"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    def cascade(self, scope: str, side: str) -> str:
        return f"{self.base}/alerts/cascade/{scope_path(scope)}/{segment(side)}"

    def state(self, scope: str, side: str) -> str:
        return f"{self.base}/state/cascade/{scope_path(scope)}/{segment(side)}"

    def feed(self, venue: str) -> str:
        return f"{self.base}/alerts/feed/{segment(venue)}"

    def feed_state(self, venue: str) -> str:
        return f"{self.base}/state/feed/{segment(venue)}"

    def whale(self, coin: str) -> str:
        return f"{self.base}/alerts/whale/{segment(coin)}"

    def liquidation(self, venue: str, coin: str) -> str:
        return f"{self.base}/liquidations/{segment(venue)}/{segment(coin)}"


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One PUBLISH. ``state`` messages take their payload from the channel's current state
    when they are sent, so a late retry never puts back a state that has moved on."""

    topic: str
    payload: bytes = b""
    alert_id: str = ""
    retain: bool = False
    state: bool = False


class _Publishing:
    """A PUBLISH already written to the socket; await it for the broker's PUBACK."""

    __slots__ = ("_channel", "_conn", "_started")

    def __init__(self, channel: MqttChannel, conn: _Connection, started: Started[None]) -> None:
        self._channel, self._conn, self._started = channel, conn, started

    def __await__(self) -> Generator[Any, Any, None]:
        return self._channel._confirm(self._conn, self._started).__await__()

    def close(self) -> None:
        """Nobody will wait for the PUBACK: let aiomqtt's wait for it end on its own (the
        PUBACK, the timeout or the disconnection) rather than leave its task pending."""
        task = asyncio.ensure_future(self._started)
        _orphans.add(task)
        task.add_done_callback(_orphan_done)


_orphans: set[asyncio.Future[None]] = set()


def _orphan_done(task: asyncio.Future[None]) -> None:
    _orphans.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned publish's failure is no news


class _Connection:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.lost = asyncio.Event()


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
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._liqs: deque[Liquidation] = deque(maxlen=LIQUIDATION_QUEUE)
        self._liq_wake = asyncio.Event()
        self.liquidations_published = 0
        self.liquidations_skipped = 0
        self.connections = 0
        # Set while this channel starts a publish: paho's request to watch the socket for
        # writability is then answered by writing at once (see _write_at_once).
        self._write_now = False

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
        if isinstance(alert, FeedNotice):
            return [MqttMessage(self.topics.feed(alert.venue), orjson.dumps(alert.payload()),
                                alert.id),
                    MqttMessage(self.topics.feed_state(alert.venue), alert_id=alert.id,
                                retain=True, state=True)]
        payload = orjson.dumps(alert_payload(alert))
        if isinstance(alert, WhaleAlert):
            return [MqttMessage(self.topics.whale(alert.liquidation.coin), payload, alert.id)]
        side = alert.position_side.value
        event = MqttMessage(self.topics.cascade(alert.scope, side), payload, alert.id)
        if alert.scope == TEST_SCOPE:
            return [event]
        state = MqttMessage(self.topics.state(alert.scope, side), alert_id=alert.id,
                            retain=True, state=True)
        if alert.promoted_from is None:
            return [event, state]
        # The scope it started in no longer has a cascade of its own: clear its state.
        old = MqttMessage(self.topics.state(alert.promoted_from, side), alert_id=alert.id,
                          retain=True, state=True)
        return [event, state, old]

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
        return _Publishing(self, conn, self._start(conn.client.publish(
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

    def _publish(self, conn: _Connection, topic: str, payload: bytes, qos: int,
                 retain: bool, properties: Properties | None) -> Coroutine[Any, Any, None]:
        """Write the PUBLISH now; the coroutine returned waits for the PUBACK, the publish
        timeout, or the connection's loss."""
        return self._confirm(conn, self._start(conn.client.publish(
            topic, payload, qos=qos, retain=retain, properties=properties,
            timeout=self.config.publish_timeout_seconds)))

    def _start(self, publishing: Coroutine[Any, Any, None]) -> Started[None]:
        # aiomqtt's publish hands the packet to paho in its first step: run that step here
        # rather than as a task of its own on a later turn of the loop.
        self._write_now = True
        try:
            return Started(publishing)
        finally:
            self._write_now = False

    async def _confirm(self, conn: _Connection, started: Started[None]) -> None:
        publishing = asyncio.ensure_future(started)
        lost = asyncio.ensure_future(conn.lost.wait())
        try:
            done, _ = await asyncio.wait({publishing, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not publishing.done():
                publishing.cancel()
        if publishing not in done:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await publishing
            raise NotifyError("the connection to the MQTT broker was lost while publishing")
        exc = publishing.exception()
        if isinstance(exc, aiomqtt.MqttError):
            raise NotifyError(f"MQTT publish failed: {exc}") from None
        if exc is not None:
            raise exc

    # -- connection lifecycle -----------------------------------------------------------------
    def background(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The connection loop and the liquidation publisher, by task name."""
        return {"notify-mqtt-connection": self._connection_loop,
                "notify-mqtt-liquidations": self._liquidation_loop}

    async def start(self) -> None:
        """Run :meth:`background` in tasks of its own (outside the daemon's TaskGroup)."""
        self._tasks = [asyncio.create_task(run(), name=name)
                       for name, run in self.background().items()]

    def _write_at_once(self, client: aiomqtt.Client) -> None:
        """Make paho write a packet this channel publishes in the same step.

        aiomqtt answers paho's "watch the socket for writability" with ``add_writer``
        scheduled through ``call_soon_threadsafe`` (paho may ask from the connect thread):
        one turn of the loop to register the writer, another for the selector to report the
        socket writable, before the bytes leave. While this channel is starting a publish
        (on the loop's thread, holding none of paho's locks) the packet is written at once
        instead, and the writer is registered the usual way only if the socket did not take
        all of it. Everything else paho sends (CONNECT, PINGREQ, PUBACKs) goes as before."""
        # aiomqtt exposes no hook for this: reach its paho client, and where another
        # aiomqtt release lays it out differently, publish the usual (slower) way.
        paho = getattr(client, "_client", None)
        deferred = getattr(paho, "on_socket_register_write", None)
        if paho is None or deferred is None:
            log.info("mqtt: this aiomqtt gives no paho socket hook; alerts are written "
                     "on the next loop turns")
            return

        def register_write(pclient: Any, userdata: Any, sock: Any) -> None:
            if self._write_now:
                try:
                    pclient.loop_write()
                except Exception as exc:  # the deferred writer meets it again and disconnects
                    log.debug("mqtt: writing at once failed: %s", exc)
                if not pclient.want_write():
                    return
            deferred(pclient, userdata, sock)

        paho.on_socket_register_write = register_write

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
        self._write_at_once(client)
        return client

    async def _connection_loop(self) -> None:
        backoff = Backoff(0.2, 15.0)
        where = f"{self.config.host}:{self.config.port}"
        failing = False
        while not self._closing:
            client = self._make_client()
            conn = _Connection(client)
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

    async def _announce(self, conn: _Connection) -> None:
        """Birth message, then every current state (a restarted broker may have lost them)."""
        if self._status:
            await self._publish(conn, self.topics.status, b"online", 1, True,
                                self._properties(TEXT, 0))
        await self._republish_states(conn)

    async def _republish_states(self, conn: _Connection) -> None:
        expiry = self.config.state_expiry_seconds
        for topic, payload in list(self._state.items()):
            await self._publish(conn, topic, payload, 1, True, self._properties(JSON, expiry))

    async def _hold(self, conn: _Connection) -> None:
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
                    await self._start(conn.client.publish(
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
