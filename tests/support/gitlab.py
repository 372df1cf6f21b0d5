"""The GitLab CI/CD components as GitLab renders them, and their jobs' scripts run as a runner runs them.

GitLab interpolates `$[[ inputs.X ]]` and `$[[ component.X ]]` in the loaded YAML
(a placeholder that is a whole value keeps its type: an array input becomes an
array), expands `$VARIABLE` references in job variables and `image`, flattens
nested arrays in `script`, and runs the script lines in one shell, in the build
directory, with the variables in the environment. `render` and `JobRun` do the
same for the templates in templates/, so their scripts are tested for real.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

PLACEHOLDER = re.compile(r"\$\[\[\s*(inputs|component)\.([A-Za-z0-9_-]+)\s*\]\]")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def render(template: Path, inputs: dict[str, Any], component: dict[str, str]) -> dict[str, Any]:
    """The jobs document of a component included with `inputs`, as GitLab interpolates it."""
    spec_text, body_text = template.read_text().split("\n---\n", 1)
    spec = yaml.safe_load(spec_text)["spec"]
    declared = spec["inputs"]
    unknown = set(inputs) - set(declared)
    if unknown:
        raise KeyError(f"unknown inputs {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, decl in declared.items():
        if name in inputs:
            values[name] = inputs[name]
        elif "default" in decl:
            values[name] = decl["default"]
        else:
            raise KeyError(f"input {name} is required")
        if "options" in decl and values[name] not in decl["options"]:
            raise ValueError(f"input {name}: {values[name]!r} is not one of {decl['options']}")
    # Only the component fields the spec declares are interpolated.
    context = {"inputs": values, "component": {k: component[k] for k in spec.get("component", [])}}

    def lookup(m: re.Match[str]) -> Any:
        return context[m.group(1)][m.group(2)]

    def sub(node: Any) -> Any:
        if isinstance(node, dict):
            return {sub(k): sub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(x) for x in node]
        if isinstance(node, str):
            whole = PLACEHOLDER.fullmatch(node.strip())
            if whole:
                return lookup(whole)
            return PLACEHOLDER.sub(lambda m: _text(lookup(m)), node)
        return node

    return sub(yaml.safe_load(body_text))


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def expand(value: str, env: dict[str, str]) -> str:
    """`$VAR` / `${VAR}` from env, empty when unset (GitLab's expansion of variables and image names)."""
    return VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def flatten(items: Any) -> list[str]:
    if isinstance(items, str):
        return [items]
    return [line for item in items for line in flatten(item)]


class JobRun:
    """One job of a rendered component: its variables over the predefined ones, then its scripts."""

    def __init__(self, job: dict[str, Any], predefined: dict[str, str]) -> None:
        self.job = job
        env = dict(predefined)
        for key, value in (job.get("variables") or {}).items():
            env[key] = expand(_text(value), env)
        self.env = env

    @property
    def image(self) -> str:
        image = self.job["image"]
        return expand(image if isinstance(image, str) else image["name"], self.env)

    def script(self, section: str = "script") -> str:
        lines = flatten(self.job["hooks"]["pre_get_sources_script"] if section == "hook" else self.job[section])
        return "\n".join(lines) + "\n"

    def run(self, section: str = "script", shell: tuple[str, ...] = ("sh", "-e"),
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The section's lines in one shell, in the build directory, as the runner runs them."""
        return subprocess.run([*shell, "-c", self.script(section)], cwd=self.env["CI_PROJECT_DIR"], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
