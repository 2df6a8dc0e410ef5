"""The ``[notify]`` config section: the outbox, MQTT and webhooks.

Secrets (the MQTT password, webhook URLs that carry a token, HMAC secrets) can be given
inline or, better, as ``*_file`` keys naming a file: a relative name is looked up in
``$CREDENTIALS_DIRECTORY`` when systemd provides one (``LoadCredential=``). Secret values
are never logged and never printed by ``liqmon check-config`` beyond what the file holds.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.redact import redact_url

SEVERITIES = ("warning", "critical", "extreme")
FORMATS = ("generic", "slack", "discord", "telegram")


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = field(default=False, metadata={"help": "publish alerts to an MQTT broker"})
    host: str = field(default="127.0.0.1", metadata={"help": "the MQTT broker"})
    port: int = field(
        default=1883, metadata={"min": 1, "max": 65535, "help": "1883, or 8883 with TLS"}
    )
    protocol: str = field(
        default="5",
        metadata={"choices": ("5", "3.1.1"),
                  "help": "MQTT version; 5 adds content type and message expiry"},
    )
    client_id: str = field(
        default="",
        metadata={"help": "stable client id, unique per daemon; '' = liqmon-<hostname>"},
    )
    root: str = field(
        default="liqmon", metadata={"help": "topic root: <root>/v1/status, <root>/v1/alerts/..."}
    )
    username: str = field(default="", metadata={"help": "broker user; '' connects anonymously"})
    password: str = field(default="", metadata={"help": "prefer password_file"})
    password_file: str = field(
        default="",
        metadata={"help": "file holding the password; relative to $CREDENTIALS_DIRECTORY"},
    )
    tls: bool = field(default=False, metadata={"help": "connect with TLS"})
    ca_file: str = field(
        default="", metadata={"help": "CA bundle for the broker's certificate; '' = system"}
    )
    cert_file: str = field(default="", metadata={"help": "client certificate (mutual TLS)"})
    key_file: str = field(default="", metadata={"help": "client certificate's key"})
    tls_insecure: bool = field(
        default=False, metadata={"help": "skip the certificate's host name check (testing only)"}
    )
    keepalive_seconds: int = field(
        default=30, metadata={"min": 5, "max": 65535,
                              "help": "the broker sends the last will this long (x1.5) after "
                              "a silent connection"},
    )
    connect_timeout_seconds: float = field(
        default=5.0, metadata={"min": 0.01, "help": "give up one connection attempt after"}
    )
    publish_timeout_seconds: float = field(
        default=5.0, metadata={"min": 0.01, "help": "wait this long for PUBACK"}
    )
    message_expiry_seconds: int = field(
        default=3600,
        metadata={"min": 0, "help": "MQTT 5 expiry of alert and liquidation messages; 0 = none"},
    )
    state_expiry_seconds: int = field(
        default=21600,
        metadata={"min": 0, "help": "MQTT 5 expiry of retained cascade state, refreshed while "
                  "the cascade lasts, so a state left by a crashed daemon goes away; 0 = none"},
    )
    min_severity: str = field(
        default="warning", metadata={"choices": SEVERITIES, "help": "lowest severity sent"}
    )
    whales: bool = field(default=True, metadata={"help": "publish whale alerts"})
    liquidations: bool = field(
        default=False,
        metadata={"help": "publish liquidations to <root>/v1/liquidations/<venue>/<coin>, QoS 0"},
    )
    liquidations_min_usd: float = field(
        default=100_000.0, metadata={"min": 0, "help": "only liquidations at least this large"}
    )

    def effective_client_id(self) -> str:
        return self.client_id or f"liqmon-{socket.gethostname()}"

    def side_client_id(self, command: str) -> str:
        """A client id of its own for a side command: a broker disconnects the older of two
        clients with one id, so sharing the daemon's would knock it off."""
        return f"{self.effective_client_id()}-{command}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    enabled: bool = field(default=True, metadata={"help": "send to this webhook"})
    format: str = field(
        default="generic", metadata={"choices": FORMATS, "help": "body format of the POST"}
    )
    url: str = field(default="", metadata={"help": "prefer url_file when the URL has a token"})
    url_file: str = field(
        default="", metadata={"help": "file holding the URL; relative to $CREDENTIALS_DIRECTORY"}
    )
    allow_insecure_http: bool = field(
        default=False,
        metadata={"help": "allow an http:// URL to a host other than this one (the alert, "
                  "its signature and any token in the URL cross the network in clear)"},
    )
    secret: str = field(
        default="", metadata={"help": "HMAC-SHA256 key: X-Liqmon-Signature: sha256=<hex>"}
    )
    secret_file: str = field(default="", metadata={"help": "file holding the HMAC key"})
    chat_id: str = field(default="", metadata={"help": "Telegram chat id (format = telegram)"})
    headers: Mapping[str, str] = field(
        default_factory=dict, metadata={"help": "extra request headers"}
    )
    min_severity: str = field(
        default="warning", metadata={"choices": SEVERITIES, "help": "lowest severity sent"}
    )
    whales: bool = field(default=True, metadata={"help": "send whale alerts"})
    rate_limit_per_minute: float = field(
        default=20.0,
        metadata={"min": 0, "help": "messages per minute after the burst; 0 = unlimited"},
    )
    burst: int = field(default=5, metadata={"min": 1, "help": "messages sent back to back"})
    timeout_seconds: float = field(
        default=5.0, metadata={"min": 0.01, "help": "give up one POST after this long"}
    )


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    queue_size: int = field(
        default=1000,
        metadata={"min": 1, "help": "alerts each channel's outbox holds; the oldest go first"},
    )
    retry_initial_seconds: float = field(
        default=0.5, metadata={"min": 0.001, "help": "first retry delay of a failing channel"}
    )
    retry_max_seconds: float = field(
        default=30.0, metadata={"min": 0.001, "help": "longest retry delay"}
    )
    max_age_seconds: float = field(
        default=3600.0,
        metadata={"min": 1, "help": "an alert still undelivered this long after it was raised "
                  "is dropped"},
    )
    claim_ttl_seconds: float = field(
        default=3600.0,
        metadata={"min": 1, "help": "how long a redundant daemon's claim on a transition holds"},
    )
    claim_window_seconds: float = field(
        default=60.0,
        metadata={"min": 0, "help": "redundant daemons' transitions of one scope, side, status "
                  "and severity this close in time are one transition"},
    )
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    webhooks: Mapping[str, WebhookConfig] = field(
        default_factory=dict,
        metadata={"help": "[notify.webhooks.<name>] tables (remove this line when adding one)"},
    )


def webhook_url(config: WebhookConfig, key: str) -> str:
    """The webhook's URL (from ``url_file`` or ``url``), checked; errors never show it.

    Plain http is accepted only to a loopback address (a local relay) unless
    ``allow_insecure_http`` says otherwise: elsewhere the alert, its HMAC signature and
    any token in the URL would cross the network in clear.
    """
    url = read_secret(config.url, config.url_file, f"{key}.url_file")
    if not url:
        raise ConfigError(f"{key}.url", "", "a URL (or url_file)")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https"):
        raise ConfigError(f"{key}.url", "(hidden)", "an http:// or https:// URL")
    if scheme == "http" and not config.allow_insecure_http and not _loopback(url):
        raise ConfigError(
            f"{key}.url", redact_url(url, whole_path=True),
            f"an https:// URL; plain http only to a loopback host, or set "
            f"{key}.allow_insecure_http = true")
    return url


def _loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost is not known to stay on this host


def read_secret(inline: str, file: str, key: str) -> str:
    """The secret from ``file`` when set (trailing newline removed), else ``inline``.

    A relative ``file`` is looked up in ``$CREDENTIALS_DIRECTORY`` when it is set. Errors name
    the key and the path, never the content.
    """
    if not file:
        return inline
    path = Path(file)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if not path.is_absolute() and credentials:
        path = Path(credentials) / path
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(key, file, f"a readable file ({exc.strerror or exc})") from exc
