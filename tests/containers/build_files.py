"""Readers for the files the containers are built from: Dockerfiles, their .dockerignore, Procfiles, compose.

Small, strict parsers for the subset of each format this repository uses; anything they do not
understand raises, so a test never passes by reading nothing.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO / "services"
# Every service is a folder of services/ with a Procfile; the Python package is named after the folder.
SERVICES = sorted(path.parent.name for path in SERVICES_DIR.glob("*/Procfile"))
DOCKERFILES = ("Dockerfile", "Dockerfile-dev")
COMPOSE_FILES = ("compose.yaml", "compose.prod.yaml")

PYTHON_BASE_IMAGE = "python:3.11.7-slim-bookworm"
IMAGE_PORT = 8080
# video-streaming's front (its web: line outside containers) runs from this official image in containers.
FRONT_IMAGE = "nginxinc/nginx-unprivileged:1.29.3-alpine"


def package(service: str) -> str:
    return service.replace("-", "_")


# --- Dockerfile ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, COPY, RUN, ...
    args: str  # the rest of the logical line, continuation lines joined


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.image}"
        return found[-1]


def instructions(path: Path) -> list[Instruction]:
    """Logical instructions: comments and blank lines dropped, `\\` continuations joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = pending + line
        pending = ""
        keyword, _, args = logical.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return result


def stages(path: Path) -> list[Stage]:
    result: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(words[0], name))
        else:
            assert result, f"{path}: {instruction.keyword} before FROM"
            result[-1].instructions.append(instruction)
    return result


def exec_form(instruction: Instruction) -> list[str]:
    """CMD/ENTRYPOINT arguments; a shell-form command is an error (signals would miss gunicorn)."""
    value = json.loads(instruction.args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), instruction
    return value


def without_flags(args: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` options apart from the rest, which stays as written (for a shell)."""
    flags: dict[str, str] = {}
    rest = args.strip()
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest):
        flags[match[1]] = match[2] or ""
        rest = rest[match.end() :]
    return flags, rest


def split_flags(args: str) -> tuple[dict[str, str], list[str]]:
    """`--from=build a b` -> ({"from": "build"}, ["a", "b"]); JSON-array arguments are accepted too."""
    flags, rest = without_flags(args)
    return flags, json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def env_values(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs of a stage (the `ENV key value` legacy form is not used here)."""
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            key, sep, value = word.partition("=")
            assert sep, f"ENV {instruction.args!r}: use key=value"
            values[key] = value
    return values


# --- .dockerignore -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    exception: bool  # a `!pattern` line lets matching paths back in
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: `*` and `?` within one path element, `**` across any number of them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules(path: Path) -> list[IgnoreRule]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append(IgnoreRule(exception, _pattern_regex(pattern)))
    return rules


def is_ignored(relative: str, rules: list[IgnoreRule]) -> bool:
    """As Docker decides: the last rule matching the path, or one of its parent folders, wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for rule in rules:
        if any(rule.regex.match(candidate) for candidate in candidates):
            ignored = not rule.exception
    return ignored


def dockerignore(dockerfile: Path) -> Path:
    """BuildKit's per-Dockerfile ignore file: `<Dockerfile>.dockerignore` next to the Dockerfile."""
    return dockerfile.with_name(dockerfile.name + ".dockerignore")


def context_files(source: str, rules: list[IgnoreRule]) -> list[Path]:
    """The files under a COPY source (relative to the repository root) that reach the build context."""
    base = REPO / source
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    return [f for f in files if not is_ignored(f.relative_to(REPO).as_posix(), rules)]


# --- Procfile and compose --------------------------------------------------------------------------


def procfile(service: str) -> dict[str, list[str]]:
    processes = {}
    for line in (SERVICES_DIR / service / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = shlex.split(command)
    assert "web" in processes, f"{service}/Procfile has no web: line"
    return processes


def image_process(service: str) -> str:
    """The Procfile process a service's own image runs: the web: line, or the app: line of a service whose
    web: line is a front that runs from a third-party image in containers (video-streaming's nginx)."""
    return "app" if "app" in procfile(service) else "web"


def compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / name).read_text())


def is_front(container: dict[str, Any]) -> bool:
    return container.get("image") == FRONT_IMAGE


def own_services(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Compose services that run one of ours: name -> (service folder, Procfile process).

    `history` runs the web process of services/history, `history-worker` its worker process.
    """
    result = {}
    for name in document["services"]:
        for service in SERVICES:
            if name == service:
                result[name] = (service, "web")
            elif name.startswith(service + "-"):
                result[name] = (service, name.removeprefix(service + "-"))
    return result
