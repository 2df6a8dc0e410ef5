"""Secrets out of everything liqmon prints about its configuration.

One rule for ``check-config``, config errors, reload messages and logs: a value is secret
when its key says so (``password``, ``secret``, ``token``, a webhook's ``url``, every
value of ``headers``), and a URL's password is secret wherever the URL appears. What stays
is what helps to diagnose: the key, that a value is set, a URL's scheme, user and host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "<redacted>"
# Keys whose whole value is a secret.
SECRET_KEYS = frozenset({"password", "secret", "token", "api_key", "apikey", "authorization"})
# Keys whose value is a mapping of secrets (request headers carry tokens).
SECRET_MAPPINGS = frozenset({"headers"})


def redact_url(url: str, *, whole_path: bool = False) -> str:
    """``redis://user:pw@host:6379/0`` → ``redis://user:<redacted>@host:6379/0``; with
    ``whole_path`` also the path and query go (``https://hooks.slack.com/<redacted>``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return HIDDEN
    if not parts.scheme or not parts.netloc:
        return HIDDEN if whole_path else url
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:{HIDDEN}@{host}"
    if whole_path:
        rest = "/" + HIDDEN if (parts.path.strip("/") or parts.query) else ""
        return f"{parts.scheme}://{netloc}{rest}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(path: str, value: Any) -> Any:
    """``value`` of config key ``path`` (dotted, such as ``notify.webhooks.ops.url``) as it
    may be shown. Mappings and lists are redacted item by item."""
    name = path.rsplit(".", 1)[-1].lower()
    if name in SECRET_KEYS and value not in ("", None):
        return HIDDEN  # whatever its type: a mistyped secret is still a secret
    if isinstance(value, Mapping):
        if name in SECRET_MAPPINGS:
            return {k: HIDDEN if v else v for k, v in value.items()}
        return {k: redact(f"{path}.{k}", v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(path, v) for v in value)
    if not isinstance(value, str) or not value:
        return value
    if _is_secret_url(path):
        return redact_url(value, whole_path=True)
    if "://" in value:
        return redact_url(value)
    return value


def _is_secret_url(path: str) -> bool:
    # notify.webhooks.<name>.url, or any URL misplaced under notify.webhooks
    return "webhooks" in path.lower().split(".")
