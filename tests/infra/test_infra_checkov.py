"""Static scan of the rendered manifests with checkov: clean, with each skip justified in the manifest.

checkov lives in its own environment (`.venv-checkov`, made by scripts/setup from requirements/checkov.txt)
because its pins clash with the main one's. A missing checkov fails this test; it is never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.capture import ROOT, Captured

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
SKIP_ANNOTATION = "checkov.io/skip"


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.is_file():
        pytest.fail(
            f"checkov is missing at {CHECKOV}: run scripts/setup (it installs requirements/checkov.txt)"
        )
    return CHECKOV


def scan(checkov: Path, manifests: list[dict], folder: Path) -> dict:
    (folder / "manifests.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    command = [str(checkov), "--directory", str(folder), "--framework", "kubernetes"]
    command += ["--skip-download", "--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr}"
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def reports(checkov: Path, captures: dict[str, Captured], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One scan per stack, shared by the tests below."""
    return {
        stack: scan(checkov, captures[stack].manifests(), tmp_path_factory.mktemp(f"checkov-{stack}"))
        for stack in ("dev", "prod")
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_manifests_pass_checkov(stack: str, reports: dict):
    report = reports[stack]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["passed"] > 300
    assert report["summary"]["parsing_errors"] == 0


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_skip_names_its_reason(stack: str, reports: dict, captures: dict[str, Captured]):
    skipped = reports[stack]["results"]["skipped_checks"]
    assert skipped, "the manifests carry justified skips; checkov should have seen them"
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]
    for manifest in captures[stack].manifests():
        for key, value in (manifest["metadata"].get("annotations") or {}).items():
            if key.startswith(SKIP_ANNOTATION):
                check_id, reason = value.split("=", 1)
                assert check_id.startswith("CKV_K8S_") and len(reason) > 20


def test_checkov_does_catch_a_broken_manifest(dev: Captured, checkov: Path, tmp_path: Path):
    deployment = json.loads(json.dumps(dev.manifest("Deployment", "history")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    del container["livenessProbe"]
    report = scan(checkov, [deployment], tmp_path)
    failed = {check["check_id"] for check in report["results"]["failed_checks"]}
    assert {"CKV_K8S_20", "CKV_K8S_8"} <= failed
