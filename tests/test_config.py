"""Config loading: defaults, files, environment overrides, and errors naming key and value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import config_to_toml, load_config
from monitor.errors import ConfigError
from tests.support.paths import REPO


def test_no_file_gives_the_embedded_defaults() -> None:
    config = load_config(None, env={})
    assert set(config.enabled_venues()) >= {
        "binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid"}
    assert config.store.backend == "memory"
    assert config.metrics.host == "127.0.0.1"


def test_environment_overrides_a_section_key_and_a_venue_key() -> None:
    config = load_config(None, env={
        "LIQMON_STORE__BACKEND": "redis",
        "LIQMON_STORE__URL": "redis://127.0.0.1:6390/0",
        "LIQMON_VENUES__BINANCE_USDM__SILENCE_LIMIT_SECONDS": "5",
        "LIQMON_VENUES__OKX__ENABLED": "false",
        "LIQMON_METRICS__COINS": '["BTC", "ETH"]',
    })
    assert config.store.backend == "redis"
    assert config.store.url == "redis://127.0.0.1:6390/0"
    assert config.venues["binance-usdm"].silence_limit_seconds == 5.0
    assert "okx" not in config.enabled_venues()
    assert config.metrics.coins == ("BTC", "ETH")


def test_file_values_and_environment_precedence(tmp_path: Path) -> None:
    path = tmp_path / "liqmon.toml"
    path.write_text('[store]\nbackend = "redis"\nbuffer_size = 10\n[venues.bybit]\n'
                    'symbols = ["BTCUSDT"]\n')
    config = load_config(path, env={"LIQMON_STORE__BUFFER_SIZE": "20"})
    assert config.store.backend == "redis"
    assert config.store.buffer_size == 20
    assert config.venues["bybit"].symbols == ("BTCUSDT",)
    assert config.venues["bybit"].settings().symbols == ("BTCUSDT",)


@pytest.mark.parametrize(
    ("env", "key", "value", "expected"),
    [
        ({"LIQMON_STORE__BACKEND": "mongo"}, "store.backend", "mongo", "one of 'memory', 'redis'"),
        ({"LIQMON_METRICS__PORT": "99999"}, "metrics.port", 99999, "a value <= 65535"),
        ({"LIQMON_STORE__BUFFER_SIZE": "many"}, "store.buffer_size", "many", "an integer"),
        ({"LIQMON_VENUES__NOPE__ENABLED": "true"}, "venues.nope", "nope", "one of"),
        ({"LIQMON_STORE__NOPE": "1"}, "store.nope", 1, "one of the keys"),
    ],
)
def test_a_bad_value_names_key_value_and_expectation(
    env: dict[str, str], key: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.key == key
    assert info.value.value == value
    assert expected in info.value.expected


def test_shipped_example_is_valid_and_matches_the_defaults() -> None:
    example = load_config(REPO / "config" / "liqmon.toml", env={})
    assert example == load_config(None, env={})


def test_effective_config_round_trips_through_toml(tmp_path: Path) -> None:
    config = load_config(None, env={"LIQMON_STORE__BACKEND": "redis"})
    text = config_to_toml(config)
    tomllib.loads(text)
    path = tmp_path / "effective.toml"
    path.write_text(text)
    assert load_config(path, env={}) == config


def test_check_config_exits_2_on_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[metrics]\nport = -1\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "metrics.port" in err and "-1" in err


def test_check_config_prints_the_effective_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "[store]" in out and "[venues.bybit]" in out


def test_every_config_key_has_help_and_the_docs_reference_is_current() -> None:
    from monitor.cli.reference import reference_markdown

    reference = reference_markdown()
    assert "|  |" not in reference  # a key without its meaning
    doc = (REPO / "docs" / "configuration.md").read_text()
    start = doc.index("<!-- config-reference:start -->\n") + len(
        "<!-- config-reference:start -->\n")
    end = doc.index("<!-- config-reference:end -->")
    assert doc[start:end] == reference, (
        "docs/configuration.md's reference is stale: "
        "run `liqmon check-config --reference` and paste it between the markers")


# Secrets: never printed, wherever the config is shown.

SECRETS = ("hunter2redis", "mqttpass42", "T00000/B00000/XXXXslacktoken", "hmackey99",
           "Bearer abc.def.ghi", "123456:telegramtoken")
SECRET_TOML = f"""
[store]
backend = "redis"
url = "redis://liqmon:{SECRETS[0]}@redis.internal:6379/0"

[notify.mqtt]
username = "liqmon"
password = "{SECRETS[1]}"

[notify.webhooks.slack]
format = "slack"
url = "https://hooks.slack.com/services/{SECRETS[2]}"
secret = "{SECRETS[3]}"
headers = {{ Authorization = "{SECRETS[4]}" }}

[notify.webhooks.tg]
format = "telegram"
url = "https://api.telegram.org/bot{SECRETS[5]}/sendMessage"
chat_id = "-100123"
"""


def test_check_config_never_prints_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "liqmon.toml"
    path.write_text(SECRET_TOML)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    for secret in SECRETS:
        assert secret not in out
    # What helps to diagnose stays: the keys, the user and the hosts.
    assert "redis://liqmon:<redacted>@redis.internal:6379/0" in out
    assert 'url = "https://hooks.slack.com/<redacted>"' in out
    assert 'password = "<redacted>"' in out
    assert 'username = "liqmon"' in out
    tomllib.loads(out)  # still valid TOML


def test_config_errors_name_the_key_but_not_the_secret() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"LIQMON_NOTIFY__MQTT__PASSWORD": '["pw-in-a-list"]'})
    assert info.value.key == "notify.mqtt.password"
    assert "pw-in-a-list" not in str(info.value)


def test_a_secret_in_a_misplaced_table_is_redacted_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "liqmon.toml"
    path.write_text('[notify.webhooks]\nops = "https://hooks.example/xyzsecret"\n'
                    '[notify.mqtt]\npassword = 5\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "xyzsecret" not in str(info.value)


def test_a_bad_redis_url_error_hides_its_password() -> None:
    from monitor.store.config import StoreConfig
    from monitor.store.connect import connect

    with pytest.raises(ConfigError) as info:
        connect(StoreConfig(backend="redis", url="mysql://root:topsecret7@db:3306/x"))
    assert "topsecret7" not in str(info.value)
    assert info.value.key == "store.url"


@pytest.mark.parametrize(("url", "allow", "ok"), [
    ("https://hooks.example.com/x", False, True),
    ("http://127.0.0.1:9000/hook", False, True),
    ("http://[::1]:9000/hook", False, True),
    ("http://localhost:9000/hook", False, True),
    ("http://hooks.example.com/xyzsecret", False, False),
    ("http://10.0.0.5/hook", False, False),
    ("http://hooks.example.com/xyzsecret", True, True),
])
def test_plain_http_webhooks_only_to_loopback_unless_allowed(
    url: str, allow: bool, ok: bool
) -> None:
    from monitor.notify.config import WebhookConfig, webhook_url

    config = WebhookConfig(url=url, allow_insecure_http=allow)
    if ok:
        assert webhook_url(config, "notify.webhooks.ops") == url
        return
    with pytest.raises(ConfigError) as info:
        webhook_url(config, "notify.webhooks.ops")
    assert info.value.key == "notify.webhooks.ops.url"
    assert "allow_insecure_http" in info.value.expected
    assert "xyzsecret" not in str(info.value)
