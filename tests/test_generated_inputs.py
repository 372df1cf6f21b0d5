"""The back-end part of the action files and GitLab components is generated from the registry.

scripts/gen-action-inputs writes, between marker comments, every back-end option's
and secret's input and the phrases that list the methods and stores. A method or a
store registered in one line gets its inputs by running the script; forgetting to
run it fails here, with a message that names the file and the script.
"""

from __future__ import annotations

import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirrorci import registry
from mirrorci.backend import Backend, Secret, option
from mirrorci.ci import inputs
from mirrorci.sources.base import FetchContext, Fetched, Source
from mirrorci.store import LocalStore
from mirrorci.store.base import StoreKind
from tests.support.gitlab import render

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen-action-inputs"
FILES = ("action.yml", "checkout/action.yml", "templates/publish.yml", "templates/checkout.yml")


def generator(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, argv)], capture_output=True, text=True, timeout=120)


def copy_files(root: Path) -> Path:
    """The four files in a directory of their own, laid out as in the repository."""
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, root / name)
    return root


def action(root: Path, name: str) -> dict[str, Any]:
    return yaml.safe_load((root / name).read_text())


def component(root: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec inputs, the job) of a GitLab component."""
    spec, jobs = yaml.safe_load_all((root / name).read_text())
    (job,) = jobs.values()
    return spec["spec"]["inputs"], job


# --- the files as they are ------------------------------------------------------------------------


def test_the_generated_parts_are_current():
    proc = generator("--check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


def test_a_stale_file_is_named_with_the_script_and_rewritten(tmp_path):
    root = copy_files(tmp_path)
    stale = root / "checkout" / "action.yml"
    text = stale.read_text()
    assert "    description: AWS profile name.\n" in text
    stale.write_text(text.replace("    description: AWS profile name.\n", "    description: A profile.\n"))

    proc = generator("--check", "--root", root)

    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "checkout/action.yml" in proc.stderr
    assert "scripts/gen-action-inputs" in proc.stderr and "templates/" not in proc.stderr
    assert "A profile." in stale.read_text()  # --check writes nothing

    assert generator("--root", root).returncode == 0
    assert stale.read_text() == text


def test_a_missing_block_is_an_error_naming_it(tmp_path):
    root = copy_files(tmp_path)
    path = root / "templates" / "checkout.yml"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "prefer" not in line.split(":")[0]))

    proc = generator("--check", "--root", root)

    assert proc.returncode == 2
    assert "templates/checkout.yml" in proc.stderr and "prefer" in proc.stderr


@pytest.mark.parametrize("command, name", [("publish", "action.yml"), ("checkout", "checkout/action.yml")])
def test_the_input_defaults_give_the_command_lines_own_settings(command, name):
    """An action that sets every back-end input to its default builds the settings the bare command line does."""
    declared = action(ROOT, name)["inputs"]
    env = {inputs.env_name(key): str(value.get("default", "")) for key, value in declared.items()
           if "${{" not in str(value.get("default", ""))}
    required = {"publish": ["--store", "s3://bucket/mirrors"], "checkout": ["https://h/r.git"]}[command]
    env[inputs.env_name("store" if command == "publish" else "repository")] = required[-1]
    from_inputs = inputs.parse(inputs.to_argv(command, inputs.Inputs(env)))
    bare = inputs.parse([command, *required])
    assert registry.settings_from_args(from_inputs, command) == registry.settings_from_args(bare, command)
    backend_inputs = {i.input for i in registry.secrets(command)}
    backend_inputs |= {s.name for s in inputs.input_specs(command)
                       if s.option in {o.flag for b in registry.backends(command) for o in b.options_for(command)}}
    assert backend_inputs and backend_inputs <= set(declared)


# --- a new method and a new store -----------------------------------------------------------------


KITE = Backend(
    name="kite",
    options=(
        option("--kite-height", "checkout", type=float, default=30.0, metavar="M",
               help="how high the kite flies, in metres (default 30)"),
        option("--kite-string", "checkout", action="append", default=[], help="a string to fly it on (repeatable)"),
    ),
    secrets=(Secret("kite-licence", "MIRRORCI_KITE_LICENCE", commands=("checkout",), help="Kite flying licence"),),
)
VAULT = Backend(
    name="vault",
    options=(option("--vault-shelf", "publish", choices=("top", "bottom"), default="top",
                    help="the shelf the bundles go on"),),
    secrets=(Secret("vault-key", "MIRRORCI_VAULT_KEY", commands=("publish",)),),
)


class KiteSource(Source):
    name = "kite"
    backend = KITE
    default = "named"

    def fetch(self, ctx: FetchContext) -> Fetched:
        raise NotImplementedError


@pytest.fixture
def generate() -> Any:
    """The script's main, loaded in this process, so that a back-end registered here is the registry's."""
    return runpy.run_path(str(SCRIPT))["main"]


@pytest.fixture
def kite_and_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror method and a store, each registered as a new module would be: one line in the registry."""
    monkeypatch.setitem(registry.METHODS, "kite", KiteSource())
    kind = StoreKind(scheme="vault", example="vault://shelf", open=lambda spec, settings: LocalStore(Path(spec)),
                     backend=VAULT)
    monkeypatch.setitem(registry.STORES, "vault", kind)


def test_a_registered_method_and_store_get_their_inputs(kite_and_vault, generate, tmp_path, capsys):
    root = copy_files(tmp_path)

    assert generate(["--check"]) == 1  # the repository's files lack them: the test suite would say so
    assert "run scripts/gen-action-inputs" in capsys.readouterr().err
    assert generate(["--root", str(root)]) == 0
    assert generate(["--check", "--root", str(root)]) == 0

    checkout = action(root, "checkout/action.yml")
    height = checkout["inputs"]["kite-height"]
    assert height == {"description": "How high the kite flies, in metres (default 30).", "required": False,
                      "default": "30"}
    strings = checkout["inputs"]["kite-strings"]["description"]
    assert strings == "A string to fly it on, one per line or comma-separated."
    licence = checkout["inputs"]["kite-licence"]["description"]
    assert licence == "Kite flying licence (or set MIRRORCI_KITE_LICENCE in the step's env). Masked in logs."
    assert "kite" in checkout["inputs"]["prefer"]["description"]
    assert "torrent or kite from a mirror" in checkout["outputs"]["method"]["description"]
    assert {spec.name for spec in inputs.input_specs("checkout")} <= set(checkout["inputs"])

    publish = action(root, "action.yml")
    assert "vault://shelf" in publish["inputs"]["store"]["description"]
    assert publish["inputs"]["vault-shelf"]["default"] == "top"
    assert "Values: top or bottom." in publish["inputs"]["vault-shelf"]["description"]
    assert "MIRRORCI_VAULT_KEY" in publish["inputs"]["vault-key"]["description"]
    assert not {"kite-height", "kite-licence"} & set(publish["inputs"])
    assert "vault-shelf" not in checkout["inputs"]


def test_a_registered_method_and_store_reach_the_gitlab_jobs(kite_and_vault, generate, tmp_path):
    root = copy_files(tmp_path)
    assert generate(["--root", str(root)]) == 0

    spec, job = component(root, "templates/checkout.yml")
    assert spec["kite-height"]["default"] == "30" and "kite-licence" not in spec  # a credential is no input
    assert job["variables"]["INPUT_KITE_HEIGHT"] == "$[[ inputs.kite-height ]]"
    assert "MIRRORCI_KITE_LICENCE" in (root / "templates" / "checkout.yml").read_text()  # named as a variable
    (rendered,) = render(root / "templates" / "checkout.yml", {"kite-height": "12"}, {"version": "1.0.0"}).values()
    assert rendered["variables"]["INPUT_KITE_HEIGHT"] == "12"

    spec, job = component(root, "templates/publish.yml")
    assert spec["vault-shelf"]["options"] == ["top", "bottom"] and spec["vault-shelf"]["default"] == "top"
    assert "vault://shelf" in spec["store"]["description"]
    (rendered,) = render(root / "templates" / "publish.yml", {"store": "vault://a"}, {"version": "1.0.0"}).values()
    assert rendered["variables"]["INPUT_VAULT_SHELF"] == "top"
    names = {k[len("INPUT_"):].lower().replace("_", "-") for k in job["variables"] if k.startswith("INPUT_")}
    assert names <= {s.name for s in inputs.input_specs("publish")} | inputs.EXTRA_INPUTS["publish"]
