"""Pure parts of notifications: webhook bodies, claim keys, topics, the [notify] config."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest
from hypothesis import given, strategies as st

from monitor.alerts import AlertState, CascadeAlert, Severity, alert_payload
from monitor.config import build_config, load_config
from monitor.errors import ConfigError
from monitor.notify.claims import claim_keys
from monitor.notify.config import read_secret
from monitor.notify.formats import (
    discord_body,
    figures,
    render_body,
    slack_body,
    summary,
    telegram_body,
)
from monitor.notify.mqtt_topics import Topics, scope_path, segment
from monitor.notify.notifier import Filter
from monitor.notify.webhook import sign, verify
from tests.support.alerts import NOW, cascade, whale

# -- formats -----------------------------------------------------------------------------------


def test_summary_is_one_line_with_status_severity_and_reason() -> None:
    line = summary(alert_payload(cascade(severity=Severity.CRITICAL)))
    assert "\n" not in line
    assert line.startswith("🟠 Liquidation cascade firing (critical): liqmon notify-test")
    resolved = summary(alert_payload(cascade(status=AlertState.RESOLVED)))
    assert resolved.startswith("🟢 Liquidation cascade resolved")
    assert summary(alert_payload(whale())).startswith("🔴 Whale liquidation (extreme): Whale:")


def test_figures_carry_the_window_numbers() -> None:
    table = dict(figures(alert_payload(cascade())))
    assert table["Window"] == "$21.4M in 5m"
    assert table["Long share"] == "87%"
    assert table["Price move"] == "-2.1%"
    assert table["Venues"] == "hyperliquid 43%, bybit 30%, binance-usdm 27%"
    assert table["Id"] == "cas-0123456789abcdef"
    table = dict(figures(alert_payload(whale())))
    assert table["Size"] == "$222M" and table["Venue"] == "hyperliquid (ETH)"


def test_slack_body_has_text_blocks_and_escapes() -> None:
    body = slack_body(alert_payload(cascade(reason="a <b> & c")))
    assert body["text"].endswith("a &lt;b&gt; &amp; c")
    fields = body["blocks"][1]["fields"]
    assert 0 < len(fields) <= 10
    assert fields[0]["text"] == "*Scope*\ncoin:ETH longs"
    assert "cas-0123456789abcdef" in body["blocks"][2]["elements"][0]["text"]


def test_discord_body_never_mentions_and_colours_by_severity() -> None:
    body = discord_body(alert_payload(cascade(reason="@everyone look")))
    assert body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    assert embed["color"] == 0xF1C40F and embed["title"] == "Liquidation cascade firing"
    assert len(embed["fields"]) <= 25 and all(f["inline"] for f in embed["fields"])
    assert embed["timestamp"] == "2026-02-01T00:00:00.000Z"
    assert len(discord_body(alert_payload(cascade(reason="x" * 5000)))["content"]) == 2000


def test_telegram_body_is_plain_text_for_one_chat() -> None:
    body = telegram_body(alert_payload(whale()), "-100123")
    assert body["chat_id"] == "-100123" and "parse_mode" not in body
    lines = body["text"].split("\n")
    assert lines[0].startswith("🔴 Whale liquidation") and "Size: $222M" in lines


def test_generic_body_is_the_payload() -> None:
    payload = alert_payload(cascade())
    assert render_body("generic", payload) is payload
    with pytest.raises(ValueError, match="unknown webhook format"):
        render_body("teams", payload)


def test_hmac_signature_round_trip() -> None:
    body = orjson.dumps(alert_payload(cascade()))
    header = sign("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("s3cret", body, header)
    assert not verify("other", body, header)
    assert not verify("s3cret", body + b" ", header)


# -- filters and claims ------------------------------------------------------------------------


def test_filter_by_severity_and_resolve_what_was_announced() -> None:
    critical = Filter(Severity.CRITICAL, whales=False)
    assert not critical.accepts(cascade(severity=Severity.WARNING))
    assert critical.accepts(cascade(status=AlertState.ESCALATED, severity=Severity.CRITICAL))
    assert critical.accepts(cascade(status=AlertState.RESOLVED, severity=Severity.WARNING,
                                    peak_severity=Severity.EXTREME))
    assert not critical.accepts(cascade(status=AlertState.RESOLVED, severity=Severity.WARNING))
    assert not critical.accepts(whale())
    assert Filter(Severity.WARNING, whales=True).accepts(whale())


def started(t: float, **changes: object) -> CascadeAlert:
    """A transition of a cascade that started at ``t`` (raised ten minutes later)."""
    return cascade(started_at=t, at=t + 600, **changes)


def test_whale_claims_its_id_and_cascades_claim_their_identity() -> None:
    assert claim_keys(whale(), "mqtt", 60) == ["notify:mqtt:whl-1"]
    a = started(NOW + 10)
    b = started(NOW + 40, id="cas-other")  # another daemon fired it 30 s later: another id
    assert set(claim_keys(a, "mqtt", 60)) & set(claim_keys(b, "mqtt", 60))
    assert not set(claim_keys(a, "mqtt", 60)) & set(claim_keys(a, "slack", 60))
    escalated = started(NOW + 10, status=AlertState.ESCALATED)
    assert not set(claim_keys(a, "mqtt", 60)) & set(claim_keys(escalated, "mqtt", 60))
    # Two detectors may decide a cascade escalated or cooled down minutes apart, and with
    # different severities: resolved is keyed by the start, whatever the severity.
    r1 = started(NOW, id="cas-x", status=AlertState.RESOLVED, severity=Severity.WARNING)
    r2 = cascade(id="cas-y", started_at=NOW + 20, at=NOW + 5000, status=AlertState.RESOLVED,
                 severity=Severity.EXTREME)
    assert set(claim_keys(r1, "mqtt", 60)) & set(claim_keys(r2, "mqtt", 60))
    # The same cascade (same id) resolves once, whatever its start says.
    r3 = cascade(id="cas-x", started_at=NOW + 3600, status=AlertState.RESOLVED)
    assert set(claim_keys(r1, "mqtt", 60)) & set(claim_keys(r3, "mqtt", 60))
    # The next cascade of the same scope and side is a new one.
    nxt = started(NOW + 720, id="cas-z", status=AlertState.RESOLVED)
    assert not set(claim_keys(r1, "mqtt", 60)) & set(claim_keys(nxt, "mqtt", 60))
    assert claim_keys(a, "mqtt", 0) == [
        "notify:mqtt:cas-0123456789abcdef:coin:ETH:firing:warning"]
    assert claim_keys(a, "mqtt", 60) == sorted(claim_keys(a, "mqtt", 60))


@given(st.floats(0, 1e6), st.floats(0, 59.9), st.floats(1, 600))
def test_starts_closer_than_the_window_share_a_key(t: float, gap: float, window: float) -> None:
    gap = gap * window / 60.0
    keys_a = claim_keys(started(t), "mqtt", window)
    keys_b = claim_keys(started(t + gap, id="cas-other"), "mqtt", window)
    assert set(keys_a) & set(keys_b)
    assert 2 <= len(keys_a) <= 3
    far = claim_keys(started(t + 4.01 * window, id="cas-other"), "mqtt", window)
    assert not set(keys_a) & set(far)


@pytest.mark.parametrize("same_id", [True, False])
@pytest.mark.parametrize("gap", [0.0, 10.0, 59.0, 61.0, 119.0, 500.0])
def test_exactly_one_of_two_daemons_wins_whatever_the_interleaving(
    gap: float, same_id: bool
) -> None:
    """SET NX semantics, every interleaving of two daemons claiming their keys in order."""
    for offset in range(0, 120, 13):
        keys = [claim_keys(started(NOW + offset, id="cas-a"), "mqtt", 60),
                claim_keys(started(NOW + offset + gap, id="cas-a" if same_id else "cas-b"),
                           "mqtt", 60)]
        assert same_id or gap > 60 or set(keys[0]) & set(keys[1])
        shared = bool(set(keys[0]) & set(keys[1]))
        steps = [0] * len(keys[0]) + [1] * len(keys[1])
        for order in set(itertools.permutations(steps)):
            held: set[str] = set()
            position, lost = [0, 0], [False, False]
            for who in order:
                if lost[who] or position[who] >= len(keys[who]):
                    continue
                key = keys[who][position[who]]
                if key in held:
                    lost[who] = True
                else:
                    held.add(key)
                    position[who] += 1
            winners = [w for w in (0, 1) if not lost[w]]
            assert len(winners) == (1 if shared else 2), (gap, offset, order)


# -- topics ------------------------------------------------------------------------------------


def test_topics_are_lower_case_levels_without_wildcards() -> None:
    topics = Topics("liqmon")
    assert topics.status == "liqmon/v1/status"
    assert topics.cascade("global", "long") == "liqmon/v1/alerts/cascade/global/long"
    assert topics.state("coin:ETH", "short") == "liqmon/v1/state/cascade/coin/eth/short"
    assert topics.cascade("venue:binance-usdm", "long") == (
        "liqmon/v1/alerts/cascade/venue/binance-usdm/long")
    assert topics.whale("1000PEPE") == "liqmon/v1/alerts/whale/1000pepe"
    assert topics.liquidation("kraken-futures", "BTC") == (
        "liqmon/v1/liquidations/kraken-futures/btc")
    assert Topics("home/liqmon/").status == "home/liqmon/v1/status"
    assert segment("A+B/#C") == "a_b_c" and scope_path("coin:") == "coin"


# -- config ------------------------------------------------------------------------------------


def test_notify_section_with_webhook_tables(tmp_path: Path) -> None:
    path = tmp_path / "liqmon.toml"
    path.write_text(
        '[notify]\nqueue_size = 50\n'
        '[notify.mqtt]\nenabled = true\nroot = "home/liqmon"\n'
        '[notify.webhooks.slack-desk]\nformat = "slack"\nurl = "https://hooks.slack.invalid/x"\n'
        'min_severity = "critical"\nrate_limit_per_minute = 6\n'
        '[notify.webhooks.ops]\nurl = "http://127.0.0.1:9/hook"\nsecret_file = "hook-secret"\n'
        'headers = { Authorization = "Bearer abc" }\n')
    config = load_config(path, env={"LIQMON_NOTIFY__WEBHOOKS__OPS__BURST": "2"})
    notify = config.notify
    assert notify.queue_size == 50 and notify.mqtt.enabled and notify.mqtt.root == "home/liqmon"
    slack = notify.webhooks["slack-desk"]
    assert (slack.format, slack.min_severity, slack.rate_limit_per_minute) == (
        "slack", "critical", 6.0)
    ops = notify.webhooks["ops"]
    assert ops.format == "generic" and ops.burst == 2 and ops.headers == {
        "Authorization": "Bearer abc"}


@pytest.mark.parametrize(("raw", "key"), [
    ({"notify": {"webhooks": {"x": {"format": "teams"}}}}, "notify.webhooks.x.format"),
    ({"notify": {"mqtt": {"port": 0}}}, "notify.mqtt.port"),
    ({"notify": {"mqtt": {"min_severity": "info"}}}, "notify.mqtt.min_severity"),
    ({"notify": {"queue_size": 0}}, "notify.queue_size"),
    ({"notify": {"webhooks": {"x": {"rate_limit_per_minute": -1}}}},
     "notify.webhooks.x.rate_limit_per_minute"),
])
def test_bad_notify_values_name_the_key(raw: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    assert info.value.key == key


def test_secrets_come_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mqtt-password").write_text("hunter2\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_secret("inline", "mqtt-password", "k") == "hunter2"
    assert read_secret("inline", str(tmp_path / "mqtt-password"), "k") == "hunter2"
    assert read_secret("inline", "", "k") == "inline"
    with pytest.raises(ConfigError) as info:
        read_secret("", "missing", "notify.mqtt.password_file")
    assert info.value.key == "notify.mqtt.password_file" and "hunter2" not in str(info.value)
