"""The entry point of a consumer process (the `worker:` line of a Procfile)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from flixtube_common import config, logs
from flixtube_common.consumer import ViewConsumer
from flixtube_common.store import ViewStore

LOGGER = logging.getLogger(__name__)


def run(service: str, default_queue: str, modes: tuple[str, ...], open_store: Callable[[config.Env], ViewStore]) -> int:
    """Consume "viewed" into the store in the given messaging modes; exit 0 in the others."""
    logs.configure(service)
    env = config.environ()
    try:
        mode = config.messaging_mode(env)
        if mode not in modes:
            logs.event(LOGGER, "nothing to consume in this messaging mode", mode=mode)
            return 0
        url = config.rabbit_url(env, mode) or ""
        queue = config.optional(env, "VIEWED_QUEUE", default_queue)
        store = open_store(env)
    except config.ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    heartbeat = env.get("HEARTBEAT_FILE")
    consumer = ViewConsumer(url, mode, queue, store.record, store.ping, name=f"{service}-worker",
                            heartbeat_file=Path(heartbeat) if heartbeat else None)
    try:
        consumer.run()
    except KeyboardInterrupt:
        logs.event(LOGGER, "stopped")
    return 0
