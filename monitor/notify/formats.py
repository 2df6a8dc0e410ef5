"""Webhook bodies: generic JSON, Slack, Discord and Telegram, all rendered from the one alert
payload (``alerts.alert_payload``), so every channel shows the same facts.

The chat formats carry a one-line summary (what a phone notification shows) and the
figures as label/value pairs. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.alerts import format_duration, format_usd

ICONS = {"warning": "🟡", "critical": "🟠", "extreme": "🔴", "resolved": "🟢"}
DISCORD_COLOURS = {"warning": 0xF1C40F, "critical": 0xE67E22, "extreme": 0xE74C3C,
                   "resolved": 0x2ECC71}
SLACK_MAX_FIELDS = 10
DISCORD_MAX_CONTENT = 2000
TELEGRAM_MAX_TEXT = 4096

Payload = Mapping[str, Any]


def _icon(payload: Payload) -> str:
    key = "resolved" if payload.get("status") == "resolved" else str(payload.get("severity"))
    return ICONS.get(key, "⚪")


def summary(payload: Payload) -> str:
    """One line: icon, what happened, severity, then the detector's reason."""
    if payload.get("kind") == "whale":
        return f"{_icon(payload)} Whale liquidation ({payload['severity']}): {payload['reason']}"
    if payload.get("kind") == "feed":
        return f"{_icon(payload)} Feed {payload['feed']}: {payload['reason']}"
    return (
        f"{_icon(payload)} Liquidation cascade {payload['status']} ({payload['severity']}): "
        f"{payload['reason']}"
    )


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.0f}%"


def _top(shares: list[Mapping[str, Any]], key: str, n: int = 3) -> str:
    parts = [f"{s[key]} {s['share'] * 100:.0f}%" for s in shares[:n]]
    return ", ".join(parts) if parts else "n/a"


def figures(payload: Payload) -> list[tuple[str, str]]:
    """The numbers behind the summary, as (label, value), most telling first."""
    if payload.get("kind") == "feed":
        return [("Venue", str(payload["venue"])), ("Feed", str(payload["feed"])),
                ("Silent for", format_duration(float(payload["silent_seconds"]))),
                ("Id", str(payload["id"]))]
    if payload.get("kind") == "whale":
        liq = payload["liquidation"]
        return [
            ("Size", format_usd(float(payload["usd"]))),
            ("Position", f"{liq['coin']} {liq['position_side']}"),
            ("Venue", f"{liq['venue']} ({liq['instrument']})"),
            ("Price", f"{liq['price']:,.6g}"),
            ("Exchange time", str(payload["started_at"])),
            ("Id", str(payload["id"])),
        ]
    window = format_duration(float(payload["window_seconds"]))
    scope = str(payload["scope"])
    return [
        ("Scope", f"{scope} {payload['position_side']}s"),
        ("Window", f"{format_usd(float(payload['usd']))} in {window}"),
        ("Per minute", format_usd(float(payload["usd_per_minute"]))),
        ("Baseline", f"{float(payload['baseline_multiple']):.1f}x"),
        ("Acceleration", f"{float(payload['acceleration']):.1f}x"),
        ("Long share", _percent(float(payload["long_share"]))),
        ("Price move", _percent(payload.get("price_move"), signed=True)),
        ("Venues", _top(payload["venues"], "venue")),
        ("Coins", _top(payload["coins"], "coin")),
        ("Since start", format_usd(float(payload["total_usd"]))),
        ("Peak", f"{format_usd(float(payload['peak_usd']))} ({payload['peak_severity']})"),
        ("Started", str(payload["started_at"])),
        ("Id", str(payload["id"])),
    ]


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(payload: Payload) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` for notifications, blocks for the figures."""
    pairs = figures(payload)
    shown, rest = pairs[:SLACK_MAX_FIELDS], pairs[SLACK_MAX_FIELDS:]
    head = _slack_escape(summary(payload))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"}
            for label, value in shown
        ]},
    ]
    context = [f"{label}: {_slack_escape(value)}" for label, value in rest]
    context.append(f"{payload['schema']} · {payload['time']}")
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": " · ".join(context)}
    ]})
    return {"text": head, "blocks": blocks}


def discord_body(payload: Payload) -> dict[str, Any]:
    """An execute-webhook body: the summary as content, one embed with inline fields.

    ``allowed_mentions`` is empty, so nothing in a reason can ping @everyone.
    """
    colour_key = "resolved" if payload.get("status") == "resolved" else str(payload["severity"])
    kind = payload.get("kind")
    title = ("Whale liquidation" if kind == "whale" else f"Feed {payload['feed']}"
             if kind == "feed" else f"Liquidation cascade {payload['status']}")
    return {
        "content": summary(payload)[:DISCORD_MAX_CONTENT],
        "embeds": [{
            "title": title,
            "description": str(payload["reason"])[:4096],
            "color": DISCORD_COLOURS.get(colour_key, 0x95A5A6),
            "fields": [{"name": label, "value": value[:1024], "inline": True}
                       for label, value in figures(payload)][:25],
            "timestamp": payload["time"],
            "footer": {"text": str(payload["schema"])},
        }],
        "allowed_mentions": {"parse": []},
    }


def telegram_body(payload: Payload, chat_id: str) -> dict[str, Any]:
    """A Bot API ``sendMessage`` body in plain text (no parse mode: nothing to escape)."""
    lines = [summary(payload), ""]
    lines.extend(f"{label}: {value}" for label, value in figures(payload))
    return {
        "chat_id": chat_id,
        "text": "\n".join(lines)[:TELEGRAM_MAX_TEXT],
        "disable_web_page_preview": True,
    }


def render_body(fmt: str, payload: Payload, chat_id: str = "") -> Payload:
    """The JSON body of one webhook POST in ``fmt`` (generic: the payload itself)."""
    if fmt == "slack":
        return slack_body(payload)
    if fmt == "discord":
        return discord_body(payload)
    if fmt == "telegram":
        return telegram_body(payload, chat_id)
    if fmt == "generic":
        return payload
    raise ValueError(f"unknown webhook format {fmt!r}")
