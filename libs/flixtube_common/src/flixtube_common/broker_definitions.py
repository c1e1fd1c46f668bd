"""The broker's definitions, loaded by RabbitMQ at start: `python -m flixtube_common.broker_definitions DIR`.

RabbitMQ imports every JSON file in its definitions folder when it starts (`definitions.local.path`
in rabbitmq.conf). Two files go there:
- `topology.json`, this package's copy of the contract's names: the `viewed` queue and fanout
  exchange (plain: durable, no arguments, as any implementation declares them), `viewed.dead`, and the
  subscribers' durable queues bound to the exchange. Messages from a publisher that declares nothing
  (the original design's) are then kept from the first one on, before any consumer has started.
- `users.json`, the broker's one user, made here from RABBIT_USER and RABBIT_PASSWORD (which come from
  the deployment's secrets), with only a salted hash of the password. A node that imports definitions
  at start creates no default user, so the user must be among them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from flixtube_common import config

TOPOLOGY = "topology.json"
USERS = "users.json"


def topology() -> dict[str, Any]:
    return json.loads(resources.files("flixtube_common").joinpath("rabbitmq", TOPOLOGY).read_text())


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password)), 4-byte salt."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def users(username: str, password: str) -> dict[str, Any]:
    """The user every service connects as, with every permission on the default virtual host."""
    return {
        "users": [
            {
                "name": username,
                "password_hash": password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "permissions": [{"user": username, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
    }


def write(folder: Path, username: str, password: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TOPOLOGY).write_text(json.dumps(topology(), indent=2) + "\n")
    target = folder / USERS
    target.write_text(json.dumps(users(username, password), indent=2) + "\n")
    target.chmod(0o640)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m flixtube_common.broker_definitions FOLDER", file=sys.stderr)
        return 2
    env = config.environ()
    try:
        username = config.required(env, "RABBIT_USER", "flixtube")
        password = config.required(env, "RABBIT_PASSWORD", "a generated secret")
    except config.ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    write(Path(argv[0]), username, password)
    print(f"broker definitions written to {argv[0]} (user {username})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
