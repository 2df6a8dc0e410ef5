"""``check-config`` refuses what ``run`` would fail on or retry forever, with the same message
(one code path), exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.commands import cli_env, liqmon

BAD = {
    "ws url": ('[venues.okx]\nws_base_url = "wss//ws.okx.com"\n',
               "'venues.okx.ws_base_url': got 'wss//ws.okx.com', expected a URL with a host, "
               "starting ws:// or wss://"),
    "rest url": ('[venues.bybit]\nrest_base_url = "api.bybit.com"\n',
                 "'venues.bybit.rest_base_url'"),
    "port": ('[venues.gate]\nws_base_url = "wss://fx-ws.gateio.ws:x"\n',
             "'venues.gate.ws_base_url'"),
    "redis url": ('[store]\nbackend = "redis"\nurl = "localhost:6390"\n', "'store.url'"),
    "webhook": ('[notify.webhooks.ops]\nformat = "slack"\n',
                "'notify.webhooks.ops.url': got '', expected the webhook's URL (or url_file)"),
    "thresholds": ("[detector.global_scope]\ncritical_usd = 300e6\n",
                   "'detector.global_scope': got 'cascade_usd=1e+07, critical_usd=3e+08, "
                   "extreme_usd=2.5e+08', expected cascade_usd (warning) < critical_usd < "
                   "extreme_usd"),
    "coin thresholds": ("[detector.coins.BTC]\ncascade_usd = 30e6\n", "'detector.coins.BTC'"),
    "venue option": ("[venues.okx]\noptions = { replay_max_age_seconds = -1 }\n",
                     "'venues.okx.options.replay_max_age_seconds': got -1"),
    "misspelt option": ("[venues.okx]\noptions = { replay_max_age = 5 }\n",
                        "'venues.okx.options.replay_max_age': got 5, expected one of the "
                        "options mark_price_topics_per_connection, replay_max_age_seconds"),
    "option of a venue without options": (
        "[venues.bybit]\nenabled = false\noptions = { bogus = 1 }\n",
        "'venues.bybit.options.bogus': got 1, expected no options (this venue takes none)"),
    "node path": ("[venues.hyperliquid-node]\nenabled = true\n",
                  "'venues.hyperliquid-node.options.path'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_config_refuses_it(case: str, tmp_path: Path) -> None:
    text, message = BAD[case]
    path = tmp_path / "liqmon.toml"
    path.write_text(text)
    done = liqmon(["check-config", str(path)], cli_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_run_refuses_it_with_the_same_line(tmp_path: Path) -> None:
    text, message = BAD["webhook"]
    path = tmp_path / "liqmon.toml"
    path.write_text(text)
    done = liqmon(["run", "--config", str(path)], cli_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "liqmon: config key " + message + ", or enabled = false")


def test_a_disabled_webhook_needs_no_url(tmp_path: Path) -> None:
    path = tmp_path / "liqmon.toml"
    path.write_text('[notify.webhooks.ops]\nenabled = false\n')
    assert liqmon(["check-config", str(path)], cli_env(tmp_path)).returncode == 0
