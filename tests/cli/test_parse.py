"""``liqmon parse`` on every golden frame of every venue: the command a user runs."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.venues import WEBSOCKET_VENUES

GOLDEN = Path(__file__).parents[1] / "venues" / "golden"
CASES = sorted(GOLDEN.glob("*/*.json"))


def rest_documents(venue: str, instruments: Any) -> list[Any]:
    """The golden file's instruments: REST documents by request key, as the venue sends them."""
    return [] if instruments is None else list(instruments.values())


def run_cli(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch,
            capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, list[dict[str, Any]], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(argv)
    out, err = capsysbinary.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err.decode()


def test_every_websocket_venue_has_golden_frames() -> None:
    assert {case.parent.name for case in CASES} == set(WEBSOCKET_VENUES)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_parse_prints_the_expected_events(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    golden = json.loads(case.read_text())
    venue = case.parent.name
    argv = ["parse", "--venue", venue, "--received-at", str(golden.get("received_at", 1.0))]
    for i, doc in enumerate(rest_documents(venue, golden.get("instruments"))):
        path = tmp_path / f"instruments-{i}.json"
        path.write_text(json.dumps(doc))
        argv += ["--instruments", str(path)]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no stray cached terms
    # Frames that set state first (BitMEX needs an XBT price before it values a quanto).
    lines = [*golden.get("prelude", []), golden["frame"]]
    code, events, err = run_cli(argv, "\n".join(lines) + "\n", monkeypatch, capsysbinary)
    assert code == 0, err
    expected = [e for e in golden["expected"] if "position_side" in e]
    assert len(events) == len(expected), err
    for got, want in zip(events, expected, strict=True):
        assert got["position_side"] == want["position_side"]
        assert round(got["notional_usd"], 2) == round(want["notional_usd"], 2)
        for key in ("venue", "instrument", "coin", "completeness", "event_id", "exchange_ts_ms"):
            assert got[key] == want[key], key
        for key in ("price", "qty_base"):
            assert math.isclose(got[key], want[key], rel_tol=1e-9), key


def test_invalid_lines_are_reported_with_their_number(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    good = json.loads((GOLDEN / "binance-usdm" / "force_order_sell_long.json").read_text())["frame"]
    code, events, err = run_cli(["parse", "--venue", "binance-usdm"],
                                f"{good}\nnot json\n{{\"e\":\"forceOrder\"}}\n{good}\n",
                                monkeypatch, capsysbinary)
    assert code == 0
    assert len(events) >= 2
    assert "line 2:" in err and "line 3:" in err


def test_an_unknown_venue_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code, _events, err = run_cli(["parse", "--venue", "nope"], "", monkeypatch, capsysbinary)
    assert code == 2 and "unknown venue" in err


def test_only_invalid_lines_exit_1(tmp_path: Path) -> None:
    from tests.cli.commands import cli_env, liqmon

    done = liqmon(["parse", "--venue", "bybit"], cli_env(tmp_path), stdin="not json\n{}\n")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == "liqmon parse: all 2 lines were invalid"
