"""TLS client contexts are built once per process, not on the loop per request or connect."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest

from monitor.feed import tls
from monitor.feed.instruments import InstrumentService
from monitor.simulator import Simulator, build_scenario
from monitor.venues import make_dialect


def test_a_wss_url_gets_the_one_shared_verifying_context_and_ws_none() -> None:
    first = tls.websocket_ssl("wss://stream.bybit.com/v5/public/linear")
    second = tls.websocket_ssl("wss://ws.okx.com:8443/ws/v5/public")
    assert isinstance(first, ssl.SSLContext) and first is second
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname
    assert tls.websocket_ssl("ws://127.0.0.1:9000/ws") is None
    rest = tls.rest_context()
    assert rest is tls.rest_context() and rest.verify_mode is ssl.CERT_REQUIRED


async def test_an_instrument_refresh_loads_no_ca_bundle_after_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(ssl.SSLContext, name)

        def wrapper(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
            loads.append(name)
            return original(self, *args, **kwargs)

        return wrapper

    for name in ("load_verify_locations", "load_default_certs", "set_default_verify_paths"):
        monkeypatch.setattr(ssl.SSLContext, name, counting(name))
    scenario = build_scenario("feb-2026", venues=("bybit",), duration_seconds=60)
    async with Simulator(scenario, venues=("bybit",)) as sim:
        service = InstrumentService(make_dialect("bybit"), sim.rest_base_url("bybit"),
                                    refresh_seconds=3600.0, cache_dir=None)
        await service.refresh()
        loads.clear()
        assert await service.refresh() > 0
    # Each httpx client used to build its own context: one CA bundle load per refresh.
    assert loads == []
