"""Reading the GitHub Actions files of the repository: workflows, local composite actions, their steps."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
ACTIONS = REPO / ".github" / "actions"
VENV_BIN = Path(sys.executable).parent

Mapping = dict[str, Any]


def load(path: Path) -> Mapping:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def action_files() -> list[Path]:
    return sorted(ACTIONS.glob("*/action.yml"))


def workflow(name: str) -> Mapping:
    return load(WORKFLOWS / f"{name}.yml")


def triggers(wf: Mapping) -> Mapping:
    """The `on:` block as a mapping. PyYAML reads the bare key `on` as the boolean True."""
    on = wf["on"] if "on" in wf else wf[True]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(job_or_action: Mapping) -> list[Mapping]:
    """Steps of a job (or of a composite action), the steps of local composite actions expanded in place."""
    own = job_or_action.get("steps") or job_or_action.get("runs", {}).get("steps", [])
    expanded: list[Mapping] = []
    for step in own:
        expanded.append(step)
        uses = step.get("uses", "")
        if uses.startswith("./"):
            expanded.extend(steps(load(REPO / uses / "action.yml")))
    return expanded


def all_steps() -> list[tuple[str, Mapping]]:
    """Every step written in the repository, named by file and job, local actions not expanded."""
    found: list[tuple[str, Mapping]] = []
    for path in workflow_files():
        for job_name, job in load(path)["jobs"].items():
            found += [(f"{path.name}:{job_name}", step) for step in job.get("steps", [])]
    for path in action_files():
        found += [(str(path.relative_to(REPO)), step) for step in load(path)["runs"]["steps"]]
    return found


def runs_pulumi(step: Mapping, command: str) -> bool:
    """True when the step runs `pulumi <command>`, through pulumi/actions or on a shell line."""
    if step.get("uses", "").startswith("pulumi/actions@"):
        return (step.get("with") or {}).get("command") == command
    return re.search(rf"\bpulumi {command}\b", step.get("run", "")) is not None


def jobs_running(wf: Mapping, command: str) -> dict[str, Mapping]:
    return {
        name: job
        for name, job in wf["jobs"].items()
        if any(runs_pulumi(step, command) for step in steps(job))
    }


def step_named(job_or_action: Mapping, name: str) -> Mapping:
    matching = [step for step in steps(job_or_action) if step.get("name") == name]
    assert len(matching) == 1, f"expected one step named {name!r}, found {len(matching)}"
    return matching[0]


def run_step(
    step: Mapping, env: dict[str, str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a step's shell script as the runner would (bash -e), with `env` and a $GITHUB_OUTPUT file."""
    output = tmp_path / "github_output"
    output.write_text("")
    script = step["run"]
    assert "${{" not in script, "a script run by the tests must take its inputs from env"
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done, output.read_text()


def tool(name: str) -> Path:
    """A checker installed from requirements/checks.txt; its absence is a failure, never a skip."""
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from {VENV_BIN}: run scripts/setup (requirements/checks.txt)")
    return path
