"""FlixTube on Azure: the platform (registry + AKS), then the app on it once CI has pushed an image tag."""

import sys
from pathlib import Path

# Pulumi runs this folder as a script; make `infra.*` importable the same way the tests import it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.app import FlixTube
from infra.config import load
from infra.platform import Platform

settings = load()

platform = Platform("platform", settings)
pulumi.export("resourceGroupName", platform.resource_group_name)
pulumi.export("registryLoginServer", platform.registry_login_server)
pulumi.export("clusterName", platform.cluster_name)
pulumi.export("kubeconfig", platform.kubeconfig)

if settings.deploy_workloads:
    app = FlixTube(
        "flixtube",
        settings,
        registry=platform.registry_login_server,
        provider=platform.provider,
        pull_grant=platform.acr_pull,
    )
    pulumi.export("videoStreamingUrl", app.video_streaming_url)
else:
    pulumi.log.info("flixtube:imageTag is not set: deployed the platform only (see docs/deploy.md)")
