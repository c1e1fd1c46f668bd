"""Captures of the Pulumi program under mocks, made once per test session, all in parallel."""

from __future__ import annotations

import pytest

from tests.infra.capture import Captured, finish, start

IMAGE_TAG = "3f2c1d0e9b8a"
RUNS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "dev": ("dev", {"flixtube:imageTag": IMAGE_TAG}, ()),
    "prod": ("prod", {"flixtube:imageTag": IMAGE_TAG}, ()),
    "dev-platform": ("dev", {}, ()),
    "prod-platform": ("prod", {}, ()),
    "dev-echo": ("dev", {"flixtube:imageTag": IMAGE_TAG}, ("--echo",)),
    "prod-preview": ("prod", {"flixtube:imageTag": IMAGE_TAG}, ("--preview",)),
}


@pytest.fixture(scope="session")
def captures() -> dict[str, Captured]:
    processes = {key: start(stack, overrides, flags) for key, (stack, overrides, flags) in RUNS.items()}
    return {key: finish(process) for key, process in processes.items()}


@pytest.fixture(params=["dev", "prod"])
def deployed(request: pytest.FixtureRequest, captures: dict[str, Captured]) -> Captured:
    """Each stack with its workloads (an image tag set)."""
    return captures[request.param]


@pytest.fixture(params=["dev-platform", "prod-platform"])
def platform_only(request: pytest.FixtureRequest, captures: dict[str, Captured]) -> Captured:
    """Each stack's bootstrap run: no image tag yet."""
    return captures[request.param]


@pytest.fixture
def dev(captures: dict[str, Captured]) -> Captured:
    return captures["dev"]


@pytest.fixture
def prod(captures: dict[str, Captured]) -> Captured:
    return captures["prod"]
