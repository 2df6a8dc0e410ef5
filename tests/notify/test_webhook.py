"""Webhooks against a real local HTTP server: retries, signatures, formats, filters."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts import AlertState, Severity, alert_payload
from monitor.clock import SystemClock
from monitor.errors import ConfigError
from monitor.metrics import Metrics
from monitor.notify.config import NotifyConfig, WebhookConfig
from monitor.notify.notifier import Notifier
from monitor.notify.webhook import ALERT_ID_HEADER, SIGNATURE_HEADER, verify
from monitor.store.memory import MemoryStore
from tests.fixtures.webhook import Hook
from tests.support.alerts import cascade, running_notifier, whale
from tests.support.timing import T

FAST = {"retry_initial_seconds": 0.02, "retry_max_seconds": 0.1}


def notifier(webhooks: Mapping[str, WebhookConfig], **notify: float
             ) -> AbstractAsyncContextManager[tuple[Notifier, CollectorRegistry]]:
    config = NotifyConfig(webhooks=dict(webhooks), **{**FAST, **notify})  # type: ignore[arg-type]
    return running_notifier(config)


def count(registry: CollectorRegistry, name: str, channel: str) -> float:
    return registry.get_sample_value(name, {"channel": channel}) or 0.0


async def test_500s_then_200_is_retried_and_delivered_once_with_a_valid_signature(
    hook: Hook,
) -> None:
    hook.statuses = [500, 502, 503]
    alert = cascade()
    async with notifier({"ops": WebhookConfig(url=hook.url(), secret="s3cret")}) as (hub, reg):
        hub.publish(alert)
        assert await hub.drain(5 * T) == 0
        assert count(reg, "liqmon_notify_failures_total", "ops") == 3
        assert count(reg, "liqmon_notify_retries_total", "ops") == 3
        assert count(reg, "liqmon_notify_delivered_total", "ops") == 1
    assert len(hook.requests) == 4
    bodies = {r.body for r in hook.requests}
    assert len(bodies) == 1  # the same message each time, so the receiver can dedupe
    last = hook.requests[-1]
    assert orjson.loads(last.body) == alert_payload(alert)
    assert last.headers["Content-Type"] == "application/json"
    assert last.headers[ALERT_ID_HEADER] == alert.id
    assert verify("s3cret", last.body, last.headers[SIGNATURE_HEADER])
    assert not verify("wrong", last.body, last.headers[SIGNATURE_HEADER])


async def test_429_waits_for_retry_after(hook: Hook) -> None:
    hook.statuses = [429]
    hook.extra_headers = {"Retry-After": "0.3"}
    async with notifier({"ops": WebhookConfig(url=hook.url())}) as (hub, _reg):
        hub.publish(cascade())
        assert await hub.drain(5 * T) == 0
    assert len(hook.requests) == 2
    assert hook.requests[1].at - hook.requests[0].at >= 0.29


async def test_a_4xx_is_dropped_without_retrying(hook: Hook) -> None:
    hook.statuses = [404]
    async with notifier({"ops": WebhookConfig(url=hook.url())}) as (hub, reg):
        hub.publish(cascade(id="cas-a"))
        hub.publish(cascade(id="cas-b"))
        assert await hub.drain(5 * T) == 0
        assert count(reg, "liqmon_notify_dropped_total", "ops") == 1
    assert [orjson.loads(r.body)["id"] for r in hook.requests] == ["cas-a", "cas-b"]


async def test_chat_formats_and_a_token_url_from_a_credentials_file(
    hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token_url = hook.url("/bot123456:SECRET-TOKEN/sendMessage")
    (tmp_path / "telegram-url").write_text(token_url + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    hook.statuses = [500]
    webhooks = {
        "tg": WebhookConfig(format="telegram", url_file="telegram-url", chat_id="-100"),
        "slack": WebhookConfig(format="slack", url=hook.url("/slack")),
        "discord": WebhookConfig(format="discord", url=hook.url("/discord")),
    }
    # The app's logging setup keeps httpx (which logs request URLs at INFO) at WARNING.
    caplog.set_level(logging.DEBUG, logger="monitor")
    async with notifier(webhooks) as (hub, _reg):
        hub.publish(whale())
        assert await hub.drain(5 * T) == 0
    by_path = {r.path: orjson.loads(r.body) for r in hook.requests}
    assert by_path["/bot123456:SECRET-TOKEN/sendMessage"]["chat_id"] == "-100"
    assert by_path["/bot123456:SECRET-TOKEN/sendMessage"]["text"].startswith("🔴 Whale")
    assert by_path["/slack"]["text"].startswith("🔴 Whale liquidation")
    assert by_path["/discord"]["embeds"][0]["title"] == "Whale liquidation"
    assert "SECRET-TOKEN" not in caplog.text
    assert "HTTP 500" in caplog.text


async def test_minimum_severity_whales_and_rate_limit_per_channel(hook: Hook) -> None:
    webhooks = {
        "pager": WebhookConfig(url=hook.url("/pager"), min_severity="critical", whales=False),
        "chat": WebhookConfig(url=hook.url("/chat"), rate_limit_per_minute=300, burst=2),
    }
    started = time.monotonic()
    async with notifier(webhooks) as (hub, _reg):
        hub.publish(cascade(id="cas-1", severity=Severity.WARNING))
        hub.publish(cascade(id="cas-1", status=AlertState.ESCALATED, severity=Severity.CRITICAL))
        hub.publish(whale())
        hub.publish(cascade(id="cas-1", status=AlertState.RESOLVED,
                            severity=Severity.CRITICAL))
        assert await hub.drain(5 * T) == 0
    pager = [orjson.loads(r.body)["status"] for r in hook.requests if r.path == "/pager"]
    assert pager == ["escalated", "resolved"]
    chat = [r for r in hook.requests if r.path == "/chat"]
    assert len(chat) == 4
    # A burst of 2, then one every 0.2 s: the fourth no sooner than 0.4 s after the first.
    assert chat[3].at - started >= 0.39


async def test_an_unreachable_endpoint_counts_failures_and_keeps_the_alert() -> None:
    async with notifier({"ops": WebhookConfig(url="http://127.0.0.1:9/hook",
                                              timeout_seconds=0.5)}) as (hub, reg):
        hub.publish(cascade())
        assert await hub.drain(0.5) == 1
        assert count(reg, "liqmon_notify_failures_total", "ops") >= 1
        assert count(reg, "liqmon_notify_up", "ops") == 0
        assert count(reg, "liqmon_notify_dropped_total", "ops") == 0


def test_a_webhook_without_url_or_chat_id_is_a_config_error() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, [], [])
    for bad, key in [(WebhookConfig(), "notify.webhooks.x.url"),
                     (WebhookConfig(url="ftp://x"), "notify.webhooks.x.url"),
                     (WebhookConfig(url="https://x", format="telegram"),
                      "notify.webhooks.x.chat_id")]:
        with pytest.raises(ConfigError) as info:
            Notifier(NotifyConfig(webhooks={"x": bad}), MemoryStore(), metrics, SystemClock())
        assert info.value.key == key
