"""The typed stack-config loader: both stack files parse, and every bad setting is refused by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.config import MONGO_IMAGE, RABBIT_IMAGE, ConfigError, Settings, parse
from tests.infra.capture import ROOT, stack_config


def settings_of(stack: str, **overrides: str) -> Settings:
    config = stack_config(stack, {f"flixtube:{key}": value for key, value in overrides.items()})
    raw = {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("flixtube:")}
    return parse(raw, location=config.get("azure-native:location"), stack=stack)


def test_dev_stack_file_is_small_and_deploys_only_the_platform_without_a_tag():
    dev = settings_of("dev")
    assert dev.location == "westeurope"
    assert dev.node_count >= 1 and not dev.autoscaling and dev.zones == ()
    assert (dev.cluster_tier, dev.registry_sku, dev.replicas) == ("Free", "Basic", 1)
    assert dev.video_streaming_max_replicas is None and not dev.disruption_budgets
    assert not dev.deploy_workloads
    assert (dev.rabbit_image, dev.mongo_image) == ("rabbitmq:4.1.4-management", "mongo:8.0.12")


def test_prod_differs_where_it_should():
    dev, prod = settings_of("dev"), settings_of("prod")
    assert prod.autoscaling and prod.node_max_count > prod.node_count >= 3
    assert prod.zones == ("1", "2", "3")
    assert (prod.cluster_tier, prod.registry_sku) == ("Standard", "Premium")
    assert prod.replicas >= 2 and prod.disruption_budgets
    assert prod.video_streaming_max_replicas > prod.replicas
    assert prod.node_vm_size != dev.node_vm_size
    assert prod.kubernetes_version == dev.kubernetes_version


def test_image_tag_turns_on_the_workloads():
    assert settings_of("dev", imageTag="3f2c1d0").deploy_workloads


def test_backing_images_default_to_the_compose_pins():
    assert (RABBIT_IMAGE, MONGO_IMAGE) == ("rabbitmq:4.1.4-management", "mongo:8.0.12")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kubernetesVersion", "1.18.8-preview"),
        ("kubernetesVersion", "latest"),
        ("nodeVmSize", "big"),
        ("nodeCount", "zero"),
        ("nodeCount", "0"),
        ("nodeMaxCount", "1"),
        ("availabilityZones", '["1", "4"]'),
        ("availabilityZones", '"1"'),
        ("clusterTier", "Gold"),
        ("registrySku", "basic"),
        ("imageTag", "latest"),
        ("imageTag", "has space"),
        ("imageTag", "a" * 64),
        ("imageTag", "ends-with-dash-"),
        ("replicas", "-1"),
        ("videoStreamingMaxReplicas", "1"),
        ("podDisruptionBudgets", "yes"),
        ("rabbitImage", "rabbitmq"),
        ("mongoImage", "mongo:"),
        ("dbStorageGi", "4Gi"),
        ("nodeCuont", "3"),
    ],
)
def test_a_bad_setting_stops_the_program_naming_its_key(key: str, value: str):
    with pytest.raises(ConfigError) as raised:
        settings_of("prod", **{key: value})
    assert raised.value.key == f"flixtube:{key}"
    assert f"flixtube:{key}" in str(raised.value)


def test_disruption_budgets_need_two_replicas():
    with pytest.raises(ConfigError, match="flixtube:podDisruptionBudgets"):
        settings_of("dev", podDisruptionBudgets="true")


@pytest.mark.parametrize("key", ["kubernetesVersion", "nodeVmSize", "nodeCount"])
def test_a_missing_required_setting_is_named(key: str):
    raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev", {}).items() if k.startswith("flixtube:")}
    del raw[key]
    with pytest.raises(ConfigError, match=f"flixtube:{key}: missing"):
        parse(raw, location="westeurope", stack="dev")


@pytest.mark.parametrize("location", [None, "", "West Europe"])
def test_the_location_is_required(location: str | None):
    with pytest.raises(ConfigError, match="azure-native:location"):
        parse({}, location=location, stack="dev")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("flixtube:nodeCount=three", "config flixtube:nodeCount: expected a whole number from 1 to 100"),
        ("flixtube:nodeCuont=3", "config flixtube:nodeCuont: unknown setting"),
    ],
)
def test_the_program_stops_on_a_bad_setting_before_creating_anything(setting: str, message: str):
    result = subprocess.run(
        [sys.executable, "-m", "tests.infra.capture", "dev", setting],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""
