"""Webhook channels: one HTTP POST per alert, in the generic, Slack, Discord or Telegram format.

The generic body is the alert payload itself. With a secret, every POST carries
``X-Liqmon-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body bytes under the
secret; the receiver recomputes it over the raw body and compares in constant time.

Status codes: 2xx delivered; 408, 425, 429 and 5xx are retried (429 after ``Retry-After``);
any other 4xx means the URL, token or body is wrong, and the message is dropped. The URL
often holds a token (Slack, Discord, Telegram), so it never appears in logs or errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
import orjson

from monitor import __version__
from monitor.alerts import CascadeAlert, WhaleAlert, alert_payload
from monitor.errors import ConfigError, NotifyError, NotifyRejected
from monitor.notify.config import WebhookConfig, read_secret, webhook_url
from monitor.notify.feed_notice import FeedNotice
from monitor.notify.formats import render_body

SIGNATURE_HEADER = "X-Liqmon-Signature"
ALERT_ID_HEADER = "X-Liqmon-Alert-Id"
RETRYABLE_4XX = frozenset({408, 425, 429})


class RetryLater(NotifyError):
    """The endpoint asked to wait (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute over the raw body, compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    alert_id: str
    body: bytes
    headers: Mapping[str, str]


def _retry_after(response: httpx.Response) -> float | None:
    text = response.headers.get("retry-after")
    if text is not None:
        try:
            return max(0.0, float(text))
        except ValueError:
            return None
    # Telegram puts it in the body: {"parameters": {"retry_after": 5}}
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict):
        for holder in (data, data.get("parameters")):
            if isinstance(holder, dict) and isinstance(holder.get("retry_after"), int | float):
                return float(holder["retry_after"])
    return None


class WebhookChannel:
    def __init__(self, name: str, config: WebhookConfig) -> None:
        self.name = name
        self.config = config
        key = f"notify.webhooks.{name}"
        self._url = webhook_url(config, key)
        if config.format == "telegram" and not config.chat_id:
            raise ConfigError(f"{key}.chat_id", "", "the Telegram chat id")
        self._secret = read_secret(config.secret, config.secret_file, f"{key}.secret_file")
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.config.timeout_seconds, follow_redirects=False,
                headers={"User-Agent": f"liqmon/{__version__}"})
        return self._client

    def render(self, alert: CascadeAlert | WhaleAlert | FeedNotice) -> Sequence[WebhookMessage]:
        payload = alert.payload() if isinstance(alert, FeedNotice) else alert_payload(alert)
        body = orjson.dumps(render_body(self.config.format, payload, self.config.chat_id))
        headers = {"Content-Type": "application/json", ALERT_ID_HEADER: alert.id,
                   **self.config.headers}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        return [WebhookMessage(alert.id, body, headers)]

    async def send(self, message: WebhookMessage) -> None:
        try:
            response = await self._http().post(
                self._url, content=message.body, headers=dict(message.headers))
        except httpx.HTTPError as exc:
            raise NotifyError(self._redact(f"{type(exc).__name__}: {exc}")) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        what = f"HTTP {status} {response.reason_phrase}: {self._redact(response.text[:200])}"
        if status == 429:
            raise RetryLater(what, _retry_after(response))
        if status >= 500 or status in RETRYABLE_4XX:
            raise NotifyError(what)
        raise NotifyRejected(what)

    def _redact(self, text: str) -> str:
        return text.replace(self._url, "<url>") if self._url else text

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        await asyncio.sleep(timeout)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
