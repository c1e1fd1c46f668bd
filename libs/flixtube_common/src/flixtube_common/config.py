"""Settings read from the environment, validated once at start.

A bad setting raises ConfigError, a RuntimeError: gunicorn reports a RuntimeError raised while it
preloads the app as one line ("Error: ...") and exits 1, and worker processes print it the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

Env = Mapping[str, str]

MESSAGING_MODES = ("http", "queue", "fanout")


class ConfigError(RuntimeError):
    """A missing or invalid setting; the message names the variable."""


def environ() -> Env:
    return os.environ


def optional(env: Env, name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def required(env: Env, name: str, example: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required (e.g. {example})")
    return value


def port(env: Env, name: str = "PORT", default: str = "80") -> int:
    raw = optional(env, name, default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a TCP port number from 1 to 65535, got {raw!r}")
    return int(raw)


def app_port(env: Env) -> int:
    """APP_PORT: where an app behind a front on PORT listens, on loopback (video-streaming behind nginx)."""
    value = port(env, "APP_PORT", "8081")
    if value == port(env):
        raise ConfigError(f"APP_PORT must differ from PORT (the front listens there), got {value}")
    return value


def messaging_mode(env: Env) -> str:
    mode = optional(env, "VIEWED_MESSAGING", "fanout")
    if mode not in MESSAGING_MODES:
        raise ConfigError(f"VIEWED_MESSAGING must be one of {', '.join(MESSAGING_MODES)}, got {mode!r}")
    return mode


def url(env: Env, name: str, schemes: tuple[str, ...], *, example: str, default: str | None = None) -> str:
    value = optional(env, name, default) if default is not None else required(env, name, example)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL (e.g. {example}), got {redact(value)!r}")
    return value


def rabbit_url(env: Env, mode: str) -> str | None:
    """The AMQP URL, required unless views travel by HTTP."""
    if mode == "http":
        return None
    return url(env, "RABBIT", ("amqp", "amqps"), example="amqp://user:pass@rabbit:5672")


def mongo_url(env: Env) -> str:
    return url(env, "DBHOST", ("mongodb", "mongodb+srv"), example="mongodb://db:27017")


def redact(value: str) -> str:
    """The URL with any password replaced, safe to log."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
