"""What each workflow promises: its triggers, its guards and its permissions, read from the YAML; the
small shell gates (secrets present? confirmation typed? right branch?) are run for real."""

import re
from pathlib import Path

from .gha import (
    ACTIONS,
    Mapping,
    action_files,
    all_steps,
    jobs_running,
    load,
    run_step,
    runs_pulumi,
    step_named,
    steps,
    triggers,
    workflow,
    workflow_files,
)

MAIN = "github.ref == 'refs/heads/main'"
STACKS = ["dev", "prod"]


# --- every workflow -------------------------------------------------------------------------------


def test_every_workflow_sets_read_only_permissions_and_jobs_widen_them_only_as_needed() -> None:
    for path in workflow_files():
        wf = load(path)
        assert "permissions" in wf, f"{path.name} has no top-level permissions"
        top = wf["permissions"] or {}
        assert isinstance(top, dict), f"{path.name}: permissions must list scopes, not {top!r}"
        assert set(top.values()) <= {"read", "none"}, f"{path.name} grants {top} to every job"
        for name, job in wf["jobs"].items():
            granted = job.get("permissions", {})
            assert granted != "write-all", f"{path.name}:{name}"
            assert granted.get("contents") != "write", f"{path.name}:{name} may push to the repository"
            if granted.get("id-token") == "write":
                assert any(step.get("uses", "").startswith("azure/login@") for step in steps(job)), (
                    f"{path.name}:{name} asks for an OIDC token it never uses"
                )


def test_no_secret_is_expanded_into_a_shell_line() -> None:
    for where, step in all_steps():
        assert "secrets." not in step.get("run", ""), f"{where}: pass secrets through env, never inline"
    for path in [*workflow_files(), *action_files()]:
        assert not re.search(r"echo[^\n]*\$\{\{\s*secrets\.", path.read_text()), path


def test_actions_are_pinned_to_a_major_version_or_a_commit() -> None:
    for where, step in all_steps():
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", uses), f"{where}: {uses}"


def test_deploying_and_destroying_jobs_use_one_concurrency_group_per_stack() -> None:
    groups: dict[str, set[str]] = {stack: set() for stack in STACKS}
    for name in ["deploy", "destroy"]:
        for job_name, job in workflow(name)["jobs"].items():
            if "concurrency" not in job:
                continue
            assert job["concurrency"]["cancel-in-progress"] is False, f"{name}:{job_name} may stop mid-update"
            groups[job_name].add(job["concurrency"]["group"])
    assert all(len(group) == 1 for group in groups.values()), groups
    assert groups["dev"] != groups["prod"]


# --- ci -------------------------------------------------------------------------------------------


def test_ci_runs_on_push_and_pull_request() -> None:
    on = triggers(workflow("ci"))
    assert "pull_request" in on
    assert "push" in on


def test_ci_runs_ruff_and_every_suite() -> None:
    jobs = workflow("ci")["jobs"]
    lint = " ".join(step.get("run", "") for step in jobs["lint"]["steps"])
    assert "ruff check ." in lint
    assert "ruff format --check ." in lint
    assert set(jobs["checks"]["strategy"]["matrix"]["suite"]) == {"infra", "containers", "delivery"}
    services = " ".join(step.get("run", "") for step in jobs["services"]["steps"])
    for suite in jobs["checks"]["strategy"]["matrix"]["suite"]:
        assert f"--ignore=tests/{suite}" in services, f"tests/{suite} would run twice"


def test_ci_service_tests_have_mongodb_and_a_local_rabbitmq() -> None:
    job = workflow("ci")["jobs"]["services"]
    assert job["services"]["mongo"]["image"] == "mongo:8.0.12"
    assert job["env"]["FLIXTUBE_TEST_MONGO_URL"] == "mongodb://mongo:27017"
    # scripts/setup installs and starts rabbitmq-server next to the tests, so rabbitmqctl is local.
    assert any(step.get("run") == "bash scripts/setup" for step in job["steps"])
    assert "bookworm" in job["container"]


def test_ci_caches_pip_on_the_pinned_requirements() -> None:
    jobs = workflow("ci")["jobs"]
    for name in ["lint", "checks"]:
        setup = next(s for s in jobs[name]["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
        assert setup["with"]["cache"] == "pip"
        assert setup["with"]["cache-dependency-path"].split() == [
            "requirements/*.txt",
            "services/*/requirements.txt",
        ]
    cache = next(s for s in jobs["services"]["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert "hashFiles('requirements/*.txt', 'services/*/requirements.txt')" in cache["with"]["key"]


# --- preview --------------------------------------------------------------------------------------


def test_preview_runs_on_pull_request_only() -> None:
    assert set(triggers(workflow("preview"))) == {"pull_request"}


def test_preview_diffs_dev_and_prod_and_comments_on_the_pull_request() -> None:
    job = workflow("preview")["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    [preview] = [step for step in steps(job) if runs_pulumi(step, "preview")]
    assert preview["with"]["comment-on-pr"] is True
    assert preview["with"]["diff"] is True
    assert "flixtube:imageTag" in preview["with"]["config-map"]
    assert "PULUMI_ACCESS_TOKEN" in job["env"]


def test_preview_is_skipped_with_a_notice_when_the_secrets_are_missing(tmp_path: Path) -> None:
    wf = workflow("preview")
    assert wf["jobs"]["preview"]["if"] == "needs.gate.outputs.ready == 'true'"
    gate = wf["jobs"]["gate"]["steps"][0]
    ready = {"HAS_PULUMI_TOKEN": "true", "AZURE_CLIENT_ID": "00000000-app", "FORK": "false"}

    done, output = run_step(gate, ready, tmp_path)
    assert (done.returncode, output.strip()) == (0, "ready=true")

    for missing in [{"HAS_PULUMI_TOKEN": "false"}, {"AZURE_CLIENT_ID": ""}, {"FORK": "true"}]:
        done, output = run_step(gate, {**ready, **missing}, tmp_path)
        assert (done.returncode, output.strip()) == (0, "ready=false"), missing
        assert "::notice" in done.stdout


# --- deploy ---------------------------------------------------------------------------------------


def test_deploy_runs_on_push_to_main_and_by_hand() -> None:
    on = triggers(workflow("deploy"))
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"] == {"branches": ["main"]}
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["type"] == "choice"
    assert inputs["stack"]["options"] == STACKS
    assert inputs["image_tag"]["required"] is False


def test_deploy_runs_up_only_on_main() -> None:
    jobs = jobs_running(workflow("deploy"), "up")
    assert set(jobs) == set(STACKS)
    for name, job in jobs.items():
        assert job["if"].startswith(f"{MAIN} && "), name


def test_deploy_from_another_branch_fails_loudly(tmp_path: Path) -> None:
    job = workflow("deploy")["jobs"]["refuse-other-refs"]
    assert job["if"] == "github.ref != 'refs/heads/main'"
    done, _ = run_step(job["steps"][0], {"REF": "refs/heads/feature"}, tmp_path)
    assert done.returncode == 1
    assert "::error::" in done.stdout


def test_prod_is_deployed_by_hand_behind_the_prod_environment() -> None:
    jobs = workflow("deploy")["jobs"]
    assert "github.event_name == 'workflow_dispatch'" in jobs["prod"]["if"]
    assert "inputs.stack == 'prod'" in jobs["prod"]["if"]
    assert jobs["prod"]["environment"]["name"] == "prod"
    # dev signs in with the main-branch federated credential, which an environment would replace.
    assert "environment" not in jobs["dev"]


def test_deploy_builds_the_images_then_runs_up_with_their_tag() -> None:
    order = [
        step.get("name", step.get("uses"))
        for step in steps(load(ACTIONS / "deploy-stack" / "action.yml"))
        if runs_pulumi(step, "up") or "az acr" in step.get("run", "")
    ]
    assert order == [
        "pulumi up (platform only, first deploy of this stack)",
        "Build and push the images (az acr build)",
        "Check that the images to roll back to are in the registry",
        "pulumi up (flixtube:imageTag)",
    ]
    action = load(ACTIONS / "deploy-stack" / "action.yml")
    bootstrap = step_named(action, "pulumi up (platform only, first deploy of this stack)")
    assert bootstrap["if"] == "steps.platform.outputs.bootstrap == 'true'"
    assert "config-map" not in bootstrap["with"]
    up = step_named(action, "pulumi up (flixtube:imageTag)")
    tag = "{'flixtube:imageTag': {value: '${{ inputs.image-tag }}', secret: false}}"
    assert up["with"]["config-map"] == tag
    for service in ["video-streaming", "history", "recommendations"]:
        assert service in step_named(action, "Build and push the images (az acr build)")["run"]


def test_deploy_passes_the_commit_or_the_rollback_tag() -> None:
    for job in workflow("deploy")["jobs"].values():
        for step in job["steps"]:
            if step.get("uses") == "./.github/actions/deploy-stack":
                assert step["with"]["image-tag"] == "${{ inputs.image_tag || github.sha }}"
                assert step["with"]["build"] == "${{ !inputs.image_tag }}"


def test_deploy_rejects_an_image_tag_that_is_not_a_tag(tmp_path: Path) -> None:
    check = step_named(load(ACTIONS / "deploy-stack" / "action.yml"), "Check the inputs and name the stack")
    good = {"STACK": "prod", "ORG": "acme", "TAG": "0123abc"}
    done, output = run_step(check, good, tmp_path)
    assert (done.returncode, output.strip()) == (0, "name=acme/prod")
    done, output = run_step(check, {**good, "ORG": ""}, tmp_path)
    assert output.strip() == "name=prod"
    for bad in ["", "a b", "x;rm -rf /", "-flag", "v" * 129]:
        done, _ = run_step(check, {**good, "TAG": bad}, tmp_path)
        assert done.returncode != 0, bad


# --- destroy --------------------------------------------------------------------------------------


def test_destroy_runs_only_by_hand_with_a_typed_confirmation() -> None:
    wf = workflow("destroy")
    on = triggers(wf)
    assert set(on) == {"workflow_dispatch"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert (inputs["stack"]["type"], inputs["stack"]["options"]) == ("choice", STACKS)
    assert (inputs["confirm"]["type"], inputs["confirm"]["required"]) == ("string", True)
    destroying = jobs_running(wf, "destroy")
    assert set(destroying) == set(STACKS)
    for name, job in destroying.items():
        assert job["needs"] == "confirm", name
        assert job["if"] == f"inputs.stack == '{name}'"
    assert destroying["prod"]["environment"] == "prod"


def test_destroy_confirmation_must_equal_the_stack_name(tmp_path: Path) -> None:
    check: Mapping = workflow("destroy")["jobs"]["confirm"]["steps"][0]
    main = "refs/heads/main"
    done, _ = run_step(check, {"STACK": "prod", "CONFIRM": "prod", "REF": main}, tmp_path)
    assert done.returncode == 0, done.stdout
    for stack, confirm, ref in [
        ("prod", "dev", main),
        ("prod", "", main),
        ("prod", "Prod", main),
        ("dev", "dev", "refs/heads/feature"),
    ]:
        done, _ = run_step(check, {"STACK": stack, "CONFIRM": confirm, "REF": ref}, tmp_path)
        assert done.returncode == 1, (stack, confirm, ref)
        assert "::error::" in done.stdout
