"""Validation of the CI files: schemas, actionlint, hadolint, zizmor, and consistency with the CLI."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mirrorci.ci.inputs import EXTRA_INPUTS, default, input_specs
from tests.support.tools import tool

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = {"publish": ROOT / "action.yml", "checkout": ROOT / "checkout" / "action.yml"}
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TEMPLATES = {"publish": ROOT / "templates" / "publish.yml", "checkout": ROOT / "templates" / "checkout.yml"}


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_action_files_match_the_github_actions_schema():
    run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", *ACTIONS.values())


def test_workflows_match_the_github_workflows_schema():
    assert {w.name for w in WORKFLOWS} >= {"ci.yml", "release.yml", "image.yml"}
    run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)


@pytest.mark.parametrize("template", sorted(TEMPLATES.values()), ids=lambda p: p.name)
def test_gitlab_component_documents_match_the_gitlab_ci_schema(template, tmp_path):
    """A component file is two documents (spec, then jobs): each is validated on its own."""
    docs = list(yaml.safe_load_all(template.read_text()))
    assert len(docs) == 2 and set(docs[0]) == {"spec"} and "inputs" in docs[0]["spec"]
    paths = []
    for i, doc in enumerate(docs):
        path = tmp_path / f"{template.stem}-{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    run(tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", *paths)


def test_actionlint():
    run(tool("actionlint"), "-no-color", *WORKFLOWS)


def test_hadolint():
    run(tool("hadolint"), "--no-color", "Dockerfile")


def test_zizmor_offline():
    run(tool("zizmor"), "--offline", "--no-progress", *ACTIONS.values(), *WORKFLOWS)


@pytest.mark.parametrize("command", sorted(ACTIONS))
def test_every_cli_option_is_an_action_input(command):
    action = yaml.safe_load(ACTIONS[command].read_text())
    declared = set(action["inputs"])
    cli = {spec.name for spec in input_specs(command)}
    assert cli - declared == set(), f"CLI options without an input: add them to {ACTIONS[command].relative_to(ROOT)}"
    assert declared - cli - EXTRA_INPUTS[command] == set(), "inputs nothing reads"
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in declared)
    assert all(isinstance(i.get("default", ""), str) and i.get("description") for i in action["inputs"].values())
    if command == "checkout":  # a JavaScript action that runs mirrorci with the runner's python3
        assert action["runs"]["using"] == "node24"
        for step in ("main", "post"):
            assert (ACTIONS[command].parent / action["runs"][step]).is_file()
    else:
        assert action["runs"]["using"] == "docker" and action["runs"]["args"] == [command]
        assert (ACTIONS[command].parent / action["runs"]["image"]).resolve() == ROOT / "Dockerfile"


# actions/checkout v7's inputs and their defaults (its action.yml; '' where it declares none).
ACTIONS_CHECKOUT_V7 = {
    "repository": "${{ github.repository }}", "ref": "", "token": "${{ github.token }}", "ssh-key": "",
    "ssh-known-hosts": "", "ssh-strict": "true", "ssh-user": "git", "persist-credentials": "true", "path": "",
    "clean": "true", "filter": "", "sparse-checkout": "", "sparse-checkout-cone-mode": "true", "fetch-depth": "1",
    "fetch-tags": "false", "show-progress": "true", "lfs": "false", "submodules": "false",
    "set-safe-directory": "true", "github-server-url": "", "allow-unsafe-pr-checkout": "false",
}


def test_checkout_inputs_follow_actions_checkout():
    action = yaml.safe_load(ACTIONS["checkout"].read_text())
    inputs = action["inputs"]
    assert {name: inputs[name]["default"] for name in ACTIONS_CHECKOUT_V7 if name in inputs} == ACTIONS_CHECKOUT_V7
    # What the entry point assumes when a variable is missing agrees with action.yml.
    for spec in input_specs("checkout"):
        if spec.name in ACTIONS_CHECKOUT_V7 and spec.kind != "value":
            assert default("checkout", spec) == ACTIONS_CHECKOUT_V7[spec.name], spec.name
    assert default("checkout", next(s for s in input_specs("checkout") if s.name == "fetch-depth")) == "1"
    assert {"commit", "ref", "method", "origin-fetched", "submodules"} <= set(action["outputs"])

    outputs = yaml.safe_load(ACTIONS["publish"].read_text())["outputs"]
    assert {"bundle-url", "bundle-sha256", "info-hash", "refs"} <= set(outputs)


@pytest.mark.parametrize("command", sorted(TEMPLATES))
def test_template_variables_are_inputs_the_entry_point_reads(command):
    jobs = list(yaml.safe_load_all(TEMPLATES[command].read_text()))[1]
    (job,) = jobs.values()
    known = {spec.name for spec in input_specs(command)} | EXTRA_INPUTS[command]
    names = {k[len("INPUT_"):].lower().replace("_", "-") for k in job["variables"] if k.startswith("INPUT_")}
    assert names and names - known == set()
    text = TEMPLATES[command].read_text()
    assert f"mirrorci-ci {command} --gitlab" in text and "dotenv:" in text
    if command == "checkout":
        assert "pre_get_sources_script" in job["hooks"]


def test_dockerfile_is_a_plain_container_action_image():
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line.split()[0].upper() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#") and not line.startswith((" ", "\t"))]
    assert instructions[0] == "FROM" and re.search(r"^FROM debian:bookworm-slim$", text, re.M)
    assert "USER" not in instructions and "WORKDIR" not in instructions
    assert "entrypoint.py" in text.splitlines()[-1] and "requirements.lock" in text


def test_requirements_lock_pins_every_dependency():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.split(";")[0].strip().partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for dep in deps:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]).lower()
        assert name in pins, f"{name} from pyproject.toml is not pinned in requirements.lock"


def test_dockerfile_installs_the_requirements_before_the_source():
    """The dependency layer is rebuilt only when requirements.lock changes.

    tests/test_container.py checks the layers themselves.
    """
    steps = [line for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(steps) if re.search(pattern, line))

    copy_lock = first(r"^COPY requirements\.lock ")
    install_lock = first(r"^RUN .*pip install .*-r .*requirements\.lock")
    copy_source, install_source = first(r"^COPY mirrorci/ "), first(r"^RUN .*pip install .*--no-deps")
    assert copy_lock < install_lock < copy_source < install_source
    assert not any(re.match(r"COPY \. ", line) for line in steps)
    assert "entrypoint.py" in steps[-1] and steps[-1].startswith("ENTRYPOINT")


def test_license_is_the_mit_license_pyproject_claims():
    import tomllib

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) mirrorci authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text


def test_docs_use_the_current_major_of_actions_checkout():
    for doc in (ROOT / "README.md", ROOT / "docs" / "self-hosted.md"):
        majors = set(re.findall(r"actions/checkout@v(\d+)", doc.read_text()))
        assert majors <= {"7"}, f"{doc.name}: actions/checkout@v{majors}"


def test_release_attaches_the_zipapp_and_the_image_follows_releases():
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    zipapp = release["jobs"]["zipapp"]
    runs = "\n".join(step.get("run", "") for step in zipapp["steps"])
    assert "scripts/build-zipapp" in runs and "gh release upload" in runs
    assert "mirrorci.pyz.sha256" in runs and "-I -S dist/mirrorci.pyz" in runs
    assert zipapp["permissions"] == {"contents": "write"} and "if" not in zipapp
    image = yaml.safe_load((ROOT / ".github" / "workflows" / "image.yml").read_text())
    assert image[True]["release"]["types"] == ["published"]  # yaml reads the key `on` as True
    tags_step = next(s for s in image["jobs"]["image"]["steps"] if s.get("id") == "tags")
    assert "$image:$major.$minor.$patch" in tags_step["run"]  # what $[[ component.version ]] names


@pytest.mark.parametrize("command", sorted(TEMPLATES))
def test_components_run_in_the_image_of_their_own_version(command):
    spec, jobs = yaml.safe_load_all(TEMPLATES[command].read_text())
    (job,) = jobs.values()
    assert "version" in spec["spec"]["component"]
    assert spec["spec"]["inputs"]["image"]["default"] == "$MIRRORCI_IMAGE"
    assert job["image"] == "$[[ inputs.image ]]"  # a string: no entrypoint override
    assert job["variables"]["MIRRORCI_IMAGE"].endswith(":$[[ component.version ]]")
