"""Each simulated venue over loopback, with a plain websockets client and httpx, as a real
client would see it: paths, acks, rejections, pings, frame shapes and REST documents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from monitor.simulator import Simulator
from monitor.simulator.catalogue import listings
from monitor.simulator.scenarios.model import scripted_scenario
from monitor.simulator.venues.bybit import PAGE_SIZE
from monitor.simulator.venues.hyperliquid import LIQUIDATOR_VAULTS
from tests.support.timing import T

TIMEOUT = 10 * T
FIVE = ["binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid"]


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    venues = request.param if hasattr(request, "param") else FIVE
    scenario = scripted_scenario(venues, duration_seconds=900, every_seconds=1.0)
    async with Simulator(scenario, speed=40, venues=venues) as simulator:
        yield simulator


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


async def send(ws: ClientConnection, obj: object) -> None:
    await ws.send(orjson.dumps(obj).decode())


async def recv_json(ws: ClientConnection) -> Any:
    return loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def until(ws: ClientConnection, match: Callable[[Any], bool], limit: int = 2000) -> Any:
    """The first frame (as JSON) that ``match`` accepts."""
    async with asyncio.timeout(TIMEOUT):
        for _ in range(limit):
            frame = loads(await ws.recv())
            if match(frame):
                return frame
    raise AssertionError("no matching frame")


async def collect(ws: ClientConnection, seconds: float) -> list[Any]:
    frames: list[Any] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                frames.append(loads(await ws.recv()))
    return frames


def force_order(frame: Any) -> bool:
    return isinstance(frame, dict) and frame.get("e") == "forceOrder"


# --- Binance USD-M and COIN-M ------------------------------------------------------------------


@pytest.mark.parametrize("sim", [["binance-usdm"]], indirect=True)
async def test_binance_usdm_routed_stream(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("binance-usdm") + "/market/ws") as ws:
        params = ["!forceOrder@arr", "!markPrice@arr@1s"]
        await send(ws, {"method": "SUBSCRIBE", "params": params, "id": 1})
        assert await recv_json(ws) == {"result": None, "id": 1}
        order = (await until(ws, force_order))["o"]
        assert set(order) == {"s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"}
        assert order["S"] in ("SELL", "BUY") and order["X"] == "FILLED" and order["z"] == order["q"]
        marks = await until(ws, lambda f: isinstance(f, list))
        assert {m["e"] for m in marks} == {"markPriceUpdate"}
        assert {m["s"] for m in marks} == {i.symbol for i in listings("binance-usdm")}
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
        listed = await until(ws, lambda f: isinstance(f, dict) and f.get("id") == 2)
        assert listed["result"] == ["!forceOrder@arr", "!markPrice@arr@1s"]


@pytest.mark.parametrize("sim", [["binance-usdm"]], indirect=True)
async def test_binance_combined_and_url_streams(sim: Simulator) -> None:
    base = sim.ws_base_url("binance-usdm")
    async with websockets.connect(
        base + "/market/stream?streams=!forceOrder@arr/btcusdt@markPrice@1s"
    ) as ws:
        wrapped = await until(ws, lambda f: f.get("stream") == "!forceOrder@arr")
        assert force_order(wrapped["data"])
        mark = await until(ws, lambda f: f.get("stream") == "btcusdt@markPrice@1s")
        assert mark["data"]["s"] == "BTCUSDT"
    async with websockets.connect(base + "/market/ws/!forceOrder@arr") as ws:
        assert force_order(await recv_json(ws))  # no SUBSCRIBE needed, no ack sent


@pytest.mark.parametrize("sim", [["binance-usdm"]], indirect=True)
async def test_binance_legacy_route_acks_then_sends_nothing(sim: Simulator) -> None:
    base = sim.ws_base_url("binance-usdm")
    subscribe = {"method": "SUBSCRIBE", "params": ["!forceOrder@arr", "!markPrice@arr@1s"],
                 "id": 7}  # fmt: skip
    async with (
        websockets.connect(base + "/ws") as legacy,
        websockets.connect(base + "/market/ws") as routed,
    ):
        await send(legacy, subscribe)
        await send(routed, subscribe)
        assert await recv_json(legacy) == {"result": None, "id": 7}
        for _ in range(3):
            await until(routed, force_order)  # data flows on the routed path ...
        assert await collect(legacy, 0.3 * T) == []  # ... and not on the retired one


@pytest.mark.parametrize("sim", [["binance-usdm"]], indirect=True)
async def test_binance_invalid_stream_is_refused_and_closed(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("binance-usdm") + "/market/ws") as ws:
        await send(ws, {"method": "SUBSCRIBE", "params": ["@@@bad###"], "id": 3})
        assert await recv_json(ws) == {
            "error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 3,
        }  # fmt: skip
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)


@pytest.mark.parametrize("sim", [["binance-coinm"]], indirect=True)
async def test_binance_coinm_stream_in_contracts(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("binance-coinm") + "/ws") as ws:
        await send(ws, {"method": "SUBSCRIBE", "params": ["!forceOrder@arr", "btcusd@markPrice@1s"],
                        "id": 1})  # fmt: skip
        assert await recv_json(ws) == {"result": None, "id": 1}
        order = (await until(ws, force_order))["o"]
        assert order["ps"] == order["s"].split("_")[0]
        assert order["q"].isdigit()  # whole contracts
        pair = await until(ws, lambda f: isinstance(f, list))
        assert {m["s"] for m in pair} == {"BTCUSD_PERP", "BTCUSD_260327"}


async def test_binance_exchange_info(sim: Simulator) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        usdm = (
            await client.get(sim.rest_base_url("binance-usdm") + "/fapi/v1/exchangeInfo")
        ).json()
        coinm = (
            await client.get(sim.rest_base_url("binance-coinm") + "/dapi/v1/exchangeInfo")
        ).json()
    by_symbol = {s["symbol"]: s for s in usdm["symbols"]}
    assert by_symbol["BTCUSDT"]["status"] == "TRADING"
    assert by_symbol["1000PEPEUSDT"]["baseAsset"] == "1000PEPE"
    assert by_symbol["BTCUSDC"]["quoteAsset"] == "USDC"
    sizes = {s["symbol"]: s["contractSize"] for s in coinm["symbols"]}
    assert sizes["BTCUSD_PERP"] == 100 and sizes["ETHUSD_PERP"] == 10
    assert {s["contractStatus"] for s in coinm["symbols"]} == {"TRADING"}


# --- Bybit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sim", [["bybit"]], indirect=True)
async def test_bybit_acks_pongs_and_ticker_snapshot_then_deltas(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("bybit") + "/v5/public/linear") as ws:
        await send(ws, {"req_id": "s1", "op": "subscribe", "args": ["tickers.BTCUSDT"]})
        ack = await recv_json(ws)
        assert ack["success"] is True and ack["ret_msg"] == "" and ack["op"] == "subscribe"
        assert ack["req_id"] == "s1" and ack["conn_id"]
        snapshot = await recv_json(ws)
        assert snapshot["type"] == "snapshot" and "markPrice" in snapshot["data"]
        delta = await until(ws, lambda f: f.get("type") == "delta")
        assert set(delta["data"]) <= {"symbol", "markPrice", "indexPrice", "lastPrice"}
        await send(ws, {"req_id": "p1", "op": "ping"})
        pong = await until(ws, lambda f: f.get("op") == "ping")
        assert pong == {"success": True, "ret_msg": "pong", "conn_id": ack["conn_id"],
                        "req_id": "p1", "op": "ping"}  # fmt: skip


@pytest.mark.parametrize("sim", [["bybit"]], indirect=True)
async def test_bybit_sends_only_the_subscribed_symbols(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("bybit") + "/v5/public/linear") as ws:
        await send(ws, {"op": "subscribe", "args": ["allLiquidation.BTCUSDT"]})
        assert (await recv_json(ws))["success"] is True
        frame = await until(ws, lambda f: "topic" in f)
        assert frame["topic"] == "allLiquidation.BTCUSDT"
        row = frame["data"][0]
        assert set(row) == {"T", "s", "S", "v", "p"} and row["S"] in ("Buy", "Sell")
        later = await collect(ws, 1.0 * T)
        assert {f["topic"] for f in later} <= {"allLiquidation.BTCUSDT"}


@pytest.mark.parametrize("sim", [["bybit"]], indirect=True)
async def test_bybit_refuses_other_categories_and_unknown_topics(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("bybit") + "/v5/public/linear") as ws:
        await send(ws, {"req_id": "x", "op": "subscribe", "args": ["allLiquidation.BTCUSD"]})
        refused = await recv_json(ws)
        assert refused["success"] is False
        assert refused["ret_msg"] == "error:handler not found,topic:allLiquidation.BTCUSD"
        # The whole request is refused, naming only its first bad topic.
        await send(ws, {"req_id": "y", "op": "subscribe",
                        "args": ["tickers.BTCUSDT", "bogus.A", "bogus.B"]})
        refused = await recv_json(ws)
        assert (refused["req_id"], refused["success"]) == ("y", False)
        assert refused["ret_msg"] == "error:handler not found,topic:bogus.A"
        await send(ws, {"op": "subscribe", "args": ["bogus.BTCUSDT"]})
        assert (await recv_json(ws))["ret_msg"].startswith("error:handler not found")
        await send(ws, {"op": "subscribe", "args": [f"allLiquidation.{'X' * 900}"] * 30})
        assert (await recv_json(ws))["success"] is False
    async with websockets.connect(sim.ws_base_url("bybit") + "/v5/public/inverse") as ws:
        await send(ws, {"op": "subscribe", "args": ["allLiquidation.BTCUSD"]})
        assert (await recv_json(ws))["success"] is True


async def test_bybit_instruments_are_paged_with_the_cursor(sim: Simulator) -> None:
    url = sim.rest_base_url("bybit") + "/v5/market/instruments-info"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for category in ("linear", "inverse"):
            symbols: list[str] = []
            cursor = ""
            pages = 0
            while True:
                params = {"category": category, "limit": "1000"}
                if cursor:
                    params["cursor"] = cursor
                body = (await client.get(url, params=params)).json()
                assert body["retCode"] == 0
                page = body["result"]["list"]
                assert 0 < len(page) <= PAGE_SIZE
                symbols += [item["symbol"] for item in page]
                pages += 1
                cursor = body["result"]["nextPageCursor"]
                if not cursor:
                    break
            expected = [i.symbol for i in listings("bybit") if i.spec.category == category]
            assert symbols == expected
            assert pages == -(-len(expected) // PAGE_SIZE)
        bad = (await client.get(url, params={"category": "spot"})).json()
        assert bad["retCode"] == 10001


# --- OKX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sim", [["okx"]], indirect=True)
async def test_okx_acks_each_arg_replays_then_streams(sim: Simulator) -> None:
    args = [{"channel": "liquidation-orders", "instType": "SWAP"},
            {"channel": "mark-price", "instId": "BTC-USDT-SWAP"}]  # fmt: skip
    async with websockets.connect(sim.ws_base_url("okx") + "/ws/v5/public") as ws:
        await send(ws, {"id": "42", "op": "subscribe", "args": args})
        acks = [await recv_json(ws), await recv_json(ws)]
        assert [a["arg"] for a in acks] == args
        assert all(a["event"] == "subscribe" and a["id"] == "42" and a["connId"] for a in acks)
        first = await recv_json(ws)  # the replay push: nothing was sent before this client
        assert first == {"arg": args[0], "data": []}
        mark = await until(ws, lambda f: f.get("arg", {}).get("channel") == "mark-price")
        assert mark["data"][0]["instId"] == "BTC-USDT-SWAP" and float(mark["data"][0]["markPx"])
        push = await until(ws, lambda f: f.get("arg") == args[0] and f["data"])
        detail = push["data"][0]["details"][0]
        assert {"bkPx", "posSide", "side", "sz", "ts"} <= set(detail)
        await ws.send("ping")
        async with asyncio.timeout(TIMEOUT):
            while (reply := await ws.recv()) != "pong":
                assert loads(reply)["arg"]  # data may come first; the pong is plain text


@pytest.mark.parametrize("sim", [["okx"]], indirect=True)
async def test_okx_second_connection_replays_what_the_first_received(sim: Simulator) -> None:
    arg = {"channel": "liquidation-orders", "instType": "SWAP"}
    async with websockets.connect(sim.ws_base_url("okx") + "/ws/v5/public") as first:
        await send(first, {"op": "subscribe", "args": [arg]})
        await recv_json(first)
        await recv_json(first)  # its own (empty) replay
        received = await until(first, lambda f: f.get("arg") == arg and f["data"])
        async with websockets.connect(sim.ws_base_url("okx") + "/ws/v5/public") as second:
            await send(second, {"op": "subscribe", "args": [arg]})
            await recv_json(second)
            replay = await recv_json(second)
    replayed = {d["ts"] for e in replay["data"] for d in e["details"]}
    assert {d["ts"] for e in received["data"] for d in e["details"]} & replayed


@pytest.mark.parametrize("sim", [["okx"]], indirect=True)
async def test_okx_refuses_unknown_channels(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("okx") + "/ws/v5/public") as ws:
        await send(ws, {"op": "subscribe", "args": [{"channel": "liquidation-orders",
                                                      "instType": "PERP"}]})  # fmt: skip
        error = await recv_json(ws)
        assert error["event"] == "error" and error["code"] == "60018"
        assert error["msg"].startswith("Wrong URL or channel:liquidation-orders,instType:PERP")
        await ws.send("{not json")
        assert (await recv_json(ws))["code"] == "60012"


async def test_okx_instruments(sim: Simulator) -> None:
    url = sim.rest_base_url("okx") + "/api/v5/public/instruments"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        swap = (await client.get(url, params={"instType": "SWAP"})).json()
        futures = (await client.get(url, params={"instType": "FUTURES"})).json()
        missing = await client.get(url)
    by_id = {i["instId"]: i for i in swap["data"]}
    assert swap["code"] == "0"
    btc = by_id["BTC-USDT-SWAP"]
    assert (btc["ctVal"], btc["ctMult"], btc["ctValCcy"], btc["ctType"], btc["settleCcy"]) == (
        "0.01", "1", "BTC", "linear", "USDT",
    )  # fmt: skip
    assert by_id["BTC-USD-SWAP"]["ctValCcy"] == "USD" and by_id["BTC-USD-SWAP"]["ctVal"] == "100"
    assert by_id["PEPE-USDT-SWAP"]["ctVal"] == "10000000"
    assert {i["instType"] for i in futures["data"]} == {"FUTURES"}
    assert missing.status_code == 400 and missing.json()["code"] == "50014"


# --- Hyperliquid -------------------------------------------------------------------------------


@pytest.mark.parametrize("sim", [["hyperliquid"]], indirect=True)
async def test_hyperliquid_trades_mids_and_pong(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_base_url("hyperliquid") + "/ws") as ws:
        sub = {"type": "trades", "coin": "ETH"}
        await send(ws, {"method": "subscribe", "subscription": sub})
        assert await recv_json(ws) == {
            "channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub},
        }  # fmt: skip
        await send(ws, {"method": "subscribe", "subscription": {"type": "allMids"}})
        mids = await until(ws, lambda f: f.get("channel") == "allMids")
        assert set(mids["data"]["mids"]) == {i.symbol for i in listings("hyperliquid")}
        trades = await until(ws, lambda f: f.get("channel") == "trades" and any(
            set(t["users"]) & set(LIQUIDATOR_VAULTS) for t in f["data"]))  # fmt: skip
        trade = next(t for t in trades["data"] if set(t["users"]) & set(LIQUIDATOR_VAULTS))
        assert trade["coin"] == "ETH" and len(trade["users"]) == 2
        # A vault buying takes over a long; its counterparty sold.
        assert (trade["users"][0] in LIQUIDATOR_VAULTS) == (trade["side"] == "A")
        await send(ws, {"method": "ping"})
        await until(ws, lambda f: f == {"channel": "pong"})
        await send(ws, {"method": "subscribe", "subscription": sub})
        again = await until(ws, lambda f: f.get("channel") == "error")
        assert again["data"].startswith("Already subscribed")
        await send(ws, {"method": "subscribe", "subscription": {"type": "liquidations"}})
        error = await until(ws, lambda f: f.get("channel") == "error")
        assert error["data"].startswith("Error parsing JSON into valid websocket request")


async def test_hyperliquid_info_endpoint(sim: Simulator) -> None:
    url = sim.rest_base_url("hyperliquid") + "/info"
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        meta = (await client.post(url, json={"type": "meta"})).json()
        wrong = await client.post(url, json={"type": "nope"})
        get = await client.get(url)
    names = {u["name"]: u["szDecimals"] for u in meta["universe"]}
    assert names["BTC"] == 5 and "kPEPE" in names
    assert wrong.status_code == 422
    assert get.status_code == 405


# --- routing -----------------------------------------------------------------------------------


async def test_unknown_paths_are_404(sim: Simulator) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        assert (await client.get(sim.rest_base_url("okx") + "/api/v5/nothing")).status_code == 404
        nowhere = f"http://{sim.host}:{sim.port}/nowhere/x"
        assert (await client.get(nowhere)).status_code == 404
        index = (await client.get(f"http://{sim.host}:{sim.port}/")).json()
    assert set(index["ws"]) == set(sim.venues)
    with pytest.raises(InvalidStatus) as info:
        async with websockets.connect(sim.ws_base_url("okx") + "/ws/v5/business"):
            pass
    assert info.value.response.status_code == 404
    with pytest.raises(KeyError):
        sim.ws_base_url("nowhere")
