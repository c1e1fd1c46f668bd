"""The Makefile is the front door for people: every target is listed, prints what it runs, and prod's
`up` and `destroy` wait for the stack name to be typed. `pulumi` and `az` are replaced by recorders."""

import os
import subprocess
from pathlib import Path

import pytest

from .gha import REPO

TARGETS = ["help", "setup", "run", "dev", "lint", "test", "preview", "up", "destroy", "outputs", "images"]
REGISTRY = "flixtubedev1234.azurecr.io"
# Settings an outer make or the caller's shell would pass on to the make under test.
INHERITED = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STACK", "TAG", "CONFIRM"}


def make(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        input=stdin,
        env={**{k: v for k, v in os.environ.items() if k not in INHERITED}, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, str]:
    """`pulumi` and `az` that log their arguments; `pulumi stack output` answers with a registry."""
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, answer in [("pulumi", f'[ "$1 $2" = "stack output" ] && echo {REGISTRY}'), ("az", "")]:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{answer}\nexit 0\n')
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(log)}


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["CALLS"])
    return log.read_text().splitlines() if log.exists() else []


def test_help_lists_every_target() -> None:
    done = make("help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines()}
    assert listed >= set(TARGETS), set(TARGETS) - listed


@pytest.mark.parametrize("action", ["up", "destroy"])
def test_prod_dry_run_shows_the_confirmation_before_pulumi(action: str) -> None:
    lines = make("-n", action, "STACK=prod").stdout.splitlines()
    confirm = lines.index(f"bash scripts/confirm-stack prod {action}")
    pulumi = next(i for i, line in enumerate(lines) if f"pulumi {action} --stack prod" in line)
    assert confirm < pulumi


@pytest.mark.parametrize("target", ["preview", "up", "destroy", "outputs", "images"])
def test_stack_targets_need_a_stack(target: str) -> None:
    done = make("-n", target)
    assert done.returncode != 0
    assert f"STACK is required, e.g. make {target} STACK=dev" in done.stderr


@pytest.mark.parametrize("action", ["up", "destroy"])
def test_prod_is_refused_unless_its_name_is_typed(action: str, fakes: dict[str, str]) -> None:
    for answer in ["", "dev\n", "yes\n", "Prod\n"]:
        done = make(action, "STACK=prod", stdin=answer, env=fakes)
        assert done.returncode != 0, answer
        assert "cancelled" in done.stderr
    assert calls(fakes) == []

    done = make(action, "STACK=prod", stdin="prod\n", env=fakes)
    assert done.returncode == 0, done.stderr
    assert calls(fakes) == [f"pulumi {action} --stack prod"]


def test_confirm_variable_answers_for_scripts(fakes: dict[str, str]) -> None:
    assert make("up", "STACK=prod", env={**fakes, "CONFIRM": "dev"}).returncode != 0
    done = make("up", "STACK=prod", "TAG=abc123", env={**fakes, "CONFIRM": "prod"})
    assert done.returncode == 0, done.stderr
    assert calls(fakes) == ["pulumi up --stack prod --config flixtube:imageTag=abc123"]


def test_dev_goes_ahead_without_a_question_and_prints_what_it_runs(fakes: dict[str, str]) -> None:
    done = make("up", "STACK=dev", "TAG=abc123", env=fakes)
    assert done.returncode == 0, done.stderr
    assert "pulumi up --stack dev --config flixtube:imageTag=abc123" in done.stdout
    assert calls(fakes) == ["pulumi up --stack dev --config flixtube:imageTag=abc123"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["preview", "STACK=prod"], "pulumi preview --diff --stack prod"),
        (
            ["preview", "STACK=dev", "TAG=abc"],
            "pulumi preview --diff --stack dev --config flixtube:imageTag=abc",
        ),
        (["outputs", "STACK=dev"], "pulumi stack output --stack dev"),
    ],
)
def test_read_only_targets_run_and_print_pulumi(
    args: list[str], expected: str, fakes: dict[str, str]
) -> None:
    done = make(*args, env=fakes)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    assert calls(fakes) == [expected]


def test_images_builds_the_three_services_in_the_stack_registry(fakes: dict[str, str]) -> None:
    done = make("images", "STACK=dev", "TAG=abc123", env=fakes)
    assert done.returncode == 0, done.stderr
    builds = [
        f"acr build --registry flixtubedev1234 --image {name}:abc123 --file services/{name}/Dockerfile ."
        for name in ["video-streaming", "history", "recommendations"]
    ]
    assert calls(fakes) == ["pulumi stack output registryLoginServer --stack dev"] + [
        f"az {b}" for b in builds
    ]
    for build in builds:
        assert f"az {build}" in done.stdout


def test_ci_entry_runs_make_test_which_runs_setup_lint_and_every_suite() -> None:
    ci_run = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci_run[-1] == "make test"
    assert make("-n", "test").stdout.splitlines() == [
        "bash scripts/setup",
        ".venv/bin/python -m ruff check .",
        ".venv/bin/python -m ruff format --check .",
        ".venv/bin/python -m pytest",
    ]


def test_dev_runs_compose_watch() -> None:
    assert make("-n", "dev").stdout.strip() == "docker compose -f compose.yaml up --build --watch"
