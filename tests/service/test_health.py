"""/healthz (the process answers) and /readyz (a feed is subscribed and the store is
reachable or buffering within bounds), on a daemon running in-process."""

from __future__ import annotations

from pathlib import Path

import httpx

from monitor.simulator import Faults, Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from tests.support.daemon import running_daemon, wait_until
from tests.support.ports import free_port
from tests.support.timing import T

VENUES = ("bybit",)


def busy() -> Simulator:
    return Simulator(scripted_scenario(VENUES, duration_seconds=600, every_seconds=0.1),
                     speed=5.0, venues=VENUES)


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5 * T) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}")


async def test_ready_once_subscribed_with_a_reachable_store(tmp_path: Path) -> None:
    async with busy() as sim:
        async with running_daemon(sim, tmp_path) as app:
            assert app.server is not None
            port = app.server.port
            assert (await get(port, "/healthz")).text == "ok\n"
            await wait_until(lambda: "connections: 2;" in app.readiness()[1], 20 * T)
            response = await get(port, "/readyz")
            assert response.status_code == 200
            assert response.text == "subscribed connections: 2; store healthy: True\n"
    ok, detail = app.readiness()
    assert (ok, detail) == (False, "stopping")


async def test_not_ready_while_no_feed_is_subscribed(tmp_path: Path) -> None:
    faults = Faults(reject_subscription=True)
    async with Simulator(scripted_scenario(VENUES), speed=5.0, venues=VENUES,
                         faults=faults) as sim:
        async with running_daemon(sim, tmp_path) as app:
            assert app.server is not None
            await wait_until(lambda: app.metrics.registry.get_sample_value(
                "liqmon_feed_reconnects_total", {"venue": "bybit", "reason": "rejected"}),
                20 * T)
            assert (await get(app.server.port, "/healthz")).status_code == 200
            response = await get(app.server.port, "/readyz")
            assert response.status_code == 503
            assert response.text.startswith("subscribed connections: 0;")


async def test_not_ready_once_the_store_buffer_is_full(tmp_path: Path) -> None:
    env = {"LIQMON_STORE__BACKEND": "redis",
           "LIQMON_STORE__URL": f"redis://127.0.0.1:{free_port()}/0",
           "LIQMON_STORE__BUFFER_SIZE": "50"}
    async with busy() as sim:
        async with running_daemon(sim, tmp_path, env) as app:
            assert app.server is not None and app.ingest is not None
            app.shutdown_deadline_seconds = 1.0  # what cannot be written is lost anyway
            # Unreachable but with room in the buffer: still ready.
            await wait_until(lambda: app.readiness()[0], 20 * T)
            await wait_until(lambda: app.ingest is not None and app.ingest.counted_total >= 50,
                             20 * T)
            response = await get(app.server.port, "/readyz")
            assert response.status_code == 503
            assert response.text.endswith("store healthy: False\n")
