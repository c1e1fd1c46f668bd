"""The workflows and composite actions pass the offline linters: actionlint (with shellcheck on every
`run:`), the GitHub JSON schemas, and shellcheck on the composite actions' scripts, which actionlint skips."""

import re
import subprocess
from pathlib import Path

import pytest

from .gha import REPO, action_files, load, tool, workflow_files


def test_the_four_workflows_are_there() -> None:
    assert {path.stem for path in workflow_files()} >= {"ci", "preview", "deploy", "destroy"}


@pytest.mark.parametrize("path", workflow_files(), ids=lambda path: path.name)
def test_actionlint_is_clean(path: Path) -> None:
    done = subprocess.run(
        [tool("actionlint"), f"-shellcheck={tool('shellcheck')}", "-pyflakes=", "-no-color", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_and_actions_match_the_github_schemas() -> None:
    for schema, files in [
        ("vendor.github-workflows", workflow_files()),
        ("vendor.github-actions", action_files()),
    ]:
        done = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", schema, *files],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", action_files(), ids=lambda path: path.parent.name)
def test_composite_action_scripts_pass_shellcheck(path: Path, tmp_path: Path) -> None:
    scripts = [step["run"] for step in load(path)["runs"]["steps"] if "run" in step]
    assert scripts, f"{path} has no script"
    for number, script in enumerate(scripts):
        # An expression is replaced by a plain word, as the runner does before bash sees the script.
        text = re.sub(r"\$\{\{.*?\}\}", "EXPR", script)
        file = tmp_path / f"step{number}.sh"
        file.write_text(f"#!/usr/bin/env bash\n{text}")
        done = subprocess.run(
            [tool("shellcheck"), "--shell=bash", file],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout
