from __future__ import annotations

import pytest

from flixtube_common import config
from flixtube_common.config import ConfigError


def test_port_defaults_to_80_and_must_be_a_port() -> None:
    assert config.port({}) == 80
    assert config.port({"PORT": "8080"}) == 8080
    for bad in ("abc", "0", "65536", "-1", "80.5"):
        with pytest.raises(ConfigError, match="PORT"):
            config.port({"PORT": bad})


def test_messaging_defaults_to_fanout_and_rejects_others() -> None:
    assert config.messaging_mode({}) == "fanout"
    assert config.messaging_mode({"VIEWED_MESSAGING": "queue"}) == "queue"
    with pytest.raises(ConfigError, match="VIEWED_MESSAGING"):
        config.messaging_mode({"VIEWED_MESSAGING": "bogus"})


def test_rabbit_is_required_unless_http() -> None:
    assert config.rabbit_url({}, "http") is None
    with pytest.raises(ConfigError, match="RABBIT is required"):
        config.rabbit_url({}, "queue")
    assert config.rabbit_url({"RABBIT": "amqp://u:p@rabbit:5672"}, "fanout") == "amqp://u:p@rabbit:5672"


def test_a_bad_url_is_reported_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        config.mongo_url({"DBHOST": "http://user:hunter2@db"})
    assert "DBHOST" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_redact_hides_only_the_password() -> None:
    assert config.redact("amqp://user:pw@rabbit:5672/vh") == "amqp://user:***@rabbit:5672/vh"
    assert config.redact("mongodb://db:27017") == "mongodb://db:27017"
