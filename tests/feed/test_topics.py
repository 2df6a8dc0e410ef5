"""LiveTopics: what a live connection holds and the requests that change it (pure)."""

from __future__ import annotations

import json

from monitor.feed.topics import LiveTopics
from monitor.venues.bybit import Bybit
from monitor.venues.dialect import Rejection, VenueSettings
from monitor.venues.kraken_futures import KrakenFutures
from monitor.venues.okx import Okx

TOPICS = [f"allLiquidation.C{i:02d}USDT" for i in range(25)]


def args(requests: list[object]) -> list[list[str]]:
    return [json.loads(r.text)["args"] for r in requests]  # type: ignore[attr-defined]


def test_bybit_whole_request_refusal_resubscribes_the_rest_until_accepted() -> None:
    refused: set[str] = set()
    live = LiveTopics(Bybit(VenueSettings()), "bybit-linear-0", refused)
    first = live.start(TOPICS)
    assert [len(a) for a in args(first)] == [10, 10, 5]
    # Bybit refuses the whole second request and names only its first bad topic.
    bad_request = first[1]
    again = live.refuse(Rejection("error:handler not found,topic:allLiquidation.C10USDT",
                                  "allLiquidation.C10USDT", bad_request.request_id))
    assert args(again) == [TOPICS[11:20]]
    assert refused == {"allLiquidation.C10USDT"}
    # ... and again, when the resubscribed request holds another bad topic.
    twice = live.refuse(Rejection("m", "allLiquidation.C15USDT", again[0].request_id))
    assert args(twice) == [[t for t in TOPICS[11:20] if t != "allLiquidation.C15USDT"]]
    assert live.held == set(TOPICS) - refused
    # A request id nobody sent resubscribes nothing.
    assert live.refuse(Rejection("m", "allLiquidation.C00USDT", "unknown")) == []


def test_argument_refusal_drops_only_that_topic() -> None:
    refused: set[str] = set()
    live = LiveTopics(Okx(VenueSettings()), "okx-1", refused)
    live.start(["mark-price:A-USDT-SWAP", "mark-price:B-USDT-SWAP"])
    assert live.refuse(Rejection("60018: ...", "mark-price:A-USDT-SWAP")) == []
    assert live.held == {"mark-price:B-USDT-SWAP"}
    # Refused topics are not asked for again until the venue's refresh clears them.
    assert live.sync(["mark-price:A-USDT-SWAP", "mark-price:B-USDT-SWAP"]) == []
    refused.clear()
    (request,) = live.sync(["mark-price:A-USDT-SWAP", "mark-price:B-USDT-SWAP"])
    assert json.loads(request.text)["args"] == [{"channel": "mark-price",
                                                 "instId": "A-USDT-SWAP"}]


def test_sync_unsubscribes_delistings_and_subscribes_listings() -> None:
    live = LiveTopics(KrakenFutures(VenueSettings()), "kraken-futures", set())
    live.start(["trade:PF_A", "ticker:PF_A", "trade:PF_B", "ticker:PF_B"])
    requests = live.sync(["trade:PF_A", "ticker:PF_A", "trade:PF_C", "ticker:PF_C"])
    sent = [json.loads(r.text) for r in requests]
    assert sent == [
        {"event": "unsubscribe", "feed": "trade", "product_ids": ["PF_B"]},
        {"event": "unsubscribe", "feed": "ticker", "product_ids": ["PF_B"]},
        {"event": "subscribe", "feed": "trade", "product_ids": ["PF_C"]},
        {"event": "subscribe", "feed": "ticker", "product_ids": ["PF_C"]},
    ]
    assert live.sync(["trade:PF_A", "ticker:PF_A", "trade:PF_C", "ticker:PF_C"]) == []
