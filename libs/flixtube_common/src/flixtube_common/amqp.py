"""Connection settings shared by our RabbitMQ publisher and consumers."""

from __future__ import annotations

import pika

from flixtube_common.config import redact


def parameters(url: str, name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.connection_attempts = 1  # our own loops retry, with backoff and logs
    params.socket_timeout = 5
    params.stack_timeout = 10
    params.blocked_connection_timeout = 60
    params.heartbeat = 30
    params.client_properties = {"connection_name": name}
    return params


def describe(url: str) -> str:
    """The broker URL without its password, for logs."""
    return redact(url)
