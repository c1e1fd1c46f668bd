"""Every stack setting, read and validated in one place.

Settings live in the stack file (`Pulumi.<stack>.yaml`) under the `flixtube:` namespace, plus
`azure-native:location`. `load()` reads them from the running Pulumi program; `parse()` is the pure part,
so a typo or a bad value stops `pulumi preview` with one line naming the key, before anything is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import config as runtime_config

NAMESPACE = "flixtube"
"""The config namespace and the Kubernetes namespace the app runs in (both fixed by the contract)."""

RABBIT_IMAGE = "rabbitmq:4.1.4-management"
MONGO_IMAGE = "mongo:8.0.12"
"""Backing-service images: the same pins as the compose file. Override with `rabbitImage` / `mongoImage`."""
COLLECTOR_IMAGE = "otel/opentelemetry-collector:0.161.0"
"""The OpenTelemetry Collector that receives the traces (infra/tracing.py). Override with `collectorImage`."""

CLUSTER_TIERS = ("Free", "Standard")
REGISTRY_SKUS = ("Basic", "Standard", "Premium")
ZONES = ("1", "2", "3")

_K8S_VERSION = re.compile(r"^1\.\d{2}(\.\d{1,3})?$")
_VM_SIZE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
_LOCATION = re.compile(r"^[a-z][a-z0-9]+$")
_TAG = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
"""An image tag that is also a valid label value (app.kubernetes.io/version): at most 63 characters."""
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

T = TypeVar("T")


class ConfigError(pulumi.RunError):
    """A missing, unknown or invalid setting; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"config {key}: {problem}")


def _bad(key: str, problem: str) -> ConfigError:
    return ConfigError(f"{NAMESPACE}:{key}", problem)


@dataclass(frozen=True)
class Settings:
    """The validated settings of one stack."""

    stack: str
    location: str
    kubernetes_version: str
    node_vm_size: str
    node_count: int
    node_max_count: int | None
    zones: tuple[str, ...]
    cluster_tier: str
    registry_sku: str
    image_tag: str | None
    replicas: int
    video_streaming_max_replicas: int | None
    disruption_budgets: bool
    rabbit_image: str
    mongo_image: str
    rabbit_storage_gi: int
    db_storage_gi: int
    collector_image: str
    trace_sample_ratio: float

    @property
    def autoscaling(self) -> bool:
        """The node pool autoscales between `node_count` and `node_max_count`."""
        return self.node_max_count is not None

    @property
    def deploy_workloads(self) -> bool:
        """Without an image tag only the platform is deployed: the bootstrap run that creates the registry."""
        return self.image_tag is not None


class _Reader:
    """Typed access to the raw `flixtube:` strings; every failure raises ConfigError naming the key."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw
        self.used: set[str] = set()

    def _get(self, key: str) -> str | None:
        self.used.add(key)
        value = self._raw.get(key)
        return None if value is None or value == "" else value

    def _convert(self, key: str, convert: Callable[[str], T], expected: str) -> T | None:
        text = self._get(key)
        if text is None:
            return None
        try:
            return convert(text)
        except (ValueError, TypeError):
            raise _bad(key, f"expected {expected}, got {text!r}") from None

    def string(self, key: str, pattern: re.Pattern[str], expected: str, default: str | None = None) -> str:
        value = self.optional_string(key, pattern, expected) or default
        if value is None:
            raise _bad(key, f"missing; set it to {expected}")
        return value

    def optional_string(self, key: str, pattern: re.Pattern[str], expected: str) -> str | None:
        value = self._get(key)
        if value is not None and not pattern.match(value):
            raise _bad(key, f"expected {expected}, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(key) or default
        if value not in choices:
            raise _bad(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.optional_integer(key, low, high)
        if value is None:
            if default is None:
                raise _bad(key, f"missing; set a whole number from {low} to {high}")
            return default
        return value

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        value = self._convert(key, int, f"a whole number from {low} to {high}")
        if value is not None and not low <= value <= high:
            raise _bad(key, f"expected a whole number from {low} to {high}, got {value}")
        return value

    def ratio(self, key: str, default: float) -> float:
        value = self._convert(key, float, "a number from 0 to 1")
        if value is not None and not 0 <= value <= 1:
            raise _bad(key, f"expected a number from 0 to 1, got {value:g}")
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._convert(key, _parse_bool, "true or false")
        return default if value is None else value

    def zones(self, key: str) -> tuple[str, ...]:
        value = self._convert(key, _parse_string_list, 'a list such as ["1", "2", "3"]')
        if value is None:
            return ()
        if any(zone not in ZONES for zone in value) or len(set(value)) != len(value):
            raise _bad(key, f"expected distinct zones from {', '.join(ZONES)}, got {value}")
        return tuple(value)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def _parse_string_list(text: str) -> list[str]:
    value: Any = json.loads(text)
    if not isinstance(value, list):
        raise TypeError(text)
    return [str(item) for item in value]


def parse(raw: Mapping[str, str], *, location: str | None, stack: str) -> Settings:
    """Validate the raw `flixtube:` settings (keys without the namespace, values as Pulumi passes them)."""
    if not location or not _LOCATION.match(location):
        raise ConfigError("azure-native:location", f"expected a region such as westeurope, got {location!r}")
    read = _Reader(raw)
    node_count = read.integer("nodeCount", 1, 100)
    node_max_count = read.optional_integer("nodeMaxCount", 1, 100)
    if node_max_count is not None and node_max_count < node_count:
        raise _bad("nodeMaxCount", f"must be at least nodeCount ({node_count})")
    replicas = read.integer("replicas", 1, 50, default=1)
    max_replicas = read.optional_integer("videoStreamingMaxReplicas", 1, 100)
    if max_replicas is not None and max_replicas < replicas:
        raise _bad("videoStreamingMaxReplicas", f"must be at least replicas ({replicas})")
    disruption_budgets = read.boolean("podDisruptionBudgets", default=False)
    if disruption_budgets and replicas < 2:
        raise _bad("podDisruptionBudgets", "needs replicas of 2 or more")
    image_tag = read.optional_string("imageTag", _TAG, "an image tag such as a git SHA")
    if image_tag == "latest":
        raise _bad("imageTag", "'latest' is not deployable; use the git SHA that CI pushed")
    settings = Settings(
        stack=stack,
        location=location,
        kubernetes_version=read.string("kubernetesVersion", _K8S_VERSION, "a version such as 1.35"),
        node_vm_size=read.string("nodeVmSize", _VM_SIZE, "an Azure VM size such as Standard_D2s_v5"),
        node_count=node_count,
        node_max_count=node_max_count,
        zones=read.zones("availabilityZones"),
        cluster_tier=read.choice("clusterTier", CLUSTER_TIERS, default="Free"),
        registry_sku=read.choice("registrySku", REGISTRY_SKUS, default="Basic"),
        image_tag=image_tag,
        replicas=replicas,
        video_streaming_max_replicas=max_replicas,
        disruption_budgets=disruption_budgets,
        rabbit_image=read.string("rabbitImage", _IMAGE, "an image with a pinned tag", default=RABBIT_IMAGE),
        mongo_image=read.string("mongoImage", _IMAGE, "an image with a pinned tag", default=MONGO_IMAGE),
        rabbit_storage_gi=read.integer("rabbitStorageGi", 1, 1024, default=2),
        db_storage_gi=read.integer("dbStorageGi", 1, 1024, default=4),
        collector_image=read.string(
            "collectorImage", _IMAGE, "an image with a pinned tag", default=COLLECTOR_IMAGE
        ),
        trace_sample_ratio=read.ratio("traceSampleRatio", default=0.1),
    )
    unknown = sorted(set(raw) - read.used)
    if unknown:
        raise _bad(unknown[0], f"unknown setting; known: {', '.join(sorted(read.used))}")
    return settings


def _raw_settings() -> dict[str, str]:
    """Every `flixtube:` key the engine passed in, so an unknown (misspelt) key can be reported."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix) :]: str(value) for key, value in merged.items() if key.startswith(prefix)}


def load() -> Settings:
    """The settings of the stack being deployed."""
    return parse(
        _raw_settings(),
        location=pulumi.Config("azure-native").get("location"),
        stack=pulumi.get_stack(),
    )
