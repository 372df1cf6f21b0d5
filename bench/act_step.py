"""The checkout action's cost as a step of a job under a real runner (nektos/act), against `git clone`.

    python3 bench/act_step.py [--runs 3] [--json]

For this repository and a generated medium one (bench/repogen.py), one job runs,
in order: an empty `run:` step (what act charges for any step), a `run:` step that
does `git clone` of the repository, and `uses: org/mirror-action/checkout@v1` (the
JavaScript action) with the mirror published beforehand. The step times are act's
own ("Success - Main ... [1.2s]"). The checkout step's python runs through a small
wrapper that records how long the `mirrorci checkout` process itself took, so the
step's overhead (step wall time minus that process's time: node, the launcher's
python probe, act's exec) is reported; the target is at most 1 s. The post step
(node, one `git config` read) is shown as the cost of a nearly empty JavaScript step.

Origin is `git daemon` and the store a static HTTP server, both on 127.0.0.1. Needs
root, podman, buildah, debootstrap, runc and act: see tests/support/act.py. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import repogen  # noqa: E402
from servers import StoreServer, free_port, wait_for_port  # noqa: E402

from tests.support.act import ACTION_REF, Act, action_release, missing_requirements, podman_service, runner_image  # noqa: E402
from tests.support.container import Engine, default_state_dir  # noqa: E402

# Between the 'small' (~10 MB) and 'gitlike' (~100 MB) presets.
MEDIUM = repogen.Preset(files=6_000, commits=1_500, mods=12, adds=2, hot=600, mean_size=4_000)
CHECKOUT = ACTION_REF.replace("@", "/checkout@")

WORKFLOW = """\
name: bench
on: push
jobs:
  bench:
    runs-on: ubuntu-latest
    steps:
      - name: empty
        run: "true"
      - name: git clone
        run: git clone -q {url} clone
      - name: mirrorci
        uses: {checkout}
        with:
          repository: {url}
          path: co
          persist-credentials: false
        env:
          MIRRORCI_PYTHON: ${{{{ github.workspace }}}}/timed-python
"""

# Runs python3; for the checkout itself (not the launcher's version probe) records the process's wall time.
TIMED_PYTHON = """#!/bin/sh
case "$*" in *checkout*) ;; *) exec python3 "$@" ;; esac
start=$(date +%s%N)
python3 "$@"
rc=$?
end=$(date +%s%N)
echo $(( (end - start) / 1000000 )) >> "$GITHUB_WORKSPACE/mirrorci-ms"
exit $rc
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def prepare(workdir: Path) -> dict[str, Path]:
    """Bare origins, repacked with bitmaps: this repository and the generated medium one."""
    served = workdir / "served"
    served.mkdir(parents=True, exist_ok=True)
    repogen.PRESETS.setdefault("medium", MEDIUM)
    generated, _ = repogen.ensure_repo("medium", workdir / "repos")
    origins = {"this repository": served / "mirrorci.git", "generated medium": served / "medium.git"}
    for dest, source in zip(origins.values(), (ROOT, generated), strict=True):
        subprocess.run(["rm", "-rf", str(dest)], check=True)
        git("clone", "-q", "--bare", "--no-local", str(source), str(dest))
        git("repack", "-adbq", cwd=dest)
    return origins


def publish(origin: Path, url: str, store: Path, public_url: str, scratch: Path) -> None:
    work = scratch / f"publisher-{origin.stem}"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    git("clone", "-q", "--mirror", url, str(work))
    proc = subprocess.run([sys.executable, "-m", "mirrorci", "publish", "--repo", str(work), "--store",
                           str(store / origin.stem), "--public-url", f"{public_url}/{origin.stem}", "--json"],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"publish failed:\n{proc.stderr[-3000:]}")


def one_run(act: Act, url: str, scratch: Path) -> dict[str, float]:
    ws = scratch / f"ws-{time.monotonic_ns()}"
    (ws / ".github" / "workflows").mkdir(parents=True)
    git("init", "-q", str(ws))
    git("-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "--allow-empty", "-m", "bench",
        cwd=ws)
    workflow = ws / ".github" / "workflows" / "bench.yml"
    workflow.write_text(WORKFLOW.format(url=url, checkout=CHECKOUT))
    (ws / "timed-python").write_text(TIMED_PYTHON)
    (ws / "timed-python").chmod(0o755)
    run = act.run(ws, workflow, "bench", timeout=900)
    if run.code != 0:
        raise RuntimeError(f"act failed:\n{run.output[-5000:]}")
    outputs_ok = "::set-output:: bytes-from-origin=0" in run.output and "::set-output:: method=http" in run.output
    if not outputs_ok:
        raise RuntimeError(f"the checkout did not come from the mirror alone:\n{run.output[-5000:]}")
    process = int((ws / "mirrorci-ms").read_text().split()[-1]) / 1000
    result = {
        "empty run step": run.step("Main empty"),
        "git clone step": run.step("Main git clone"),
        "checkout step": run.step("Main mirrorci"),
        "mirrorci process": process,
        "post step": run.step("Post mirrorci"),
    }
    result["overhead"] = result["checkout step"] - process
    subprocess.run(["rm", "-rf", str(ws)], check=False)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="jobs per repository; medians are reported (default 3)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mirrorci-bench-act")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = parser.parse_args(argv)
    reason = missing_requirements()
    if reason:
        log(f"cannot run: {reason}")
        return 2
    engine = Engine(default_state_dir())
    image, seconds = runner_image(engine)
    log(f"runner image {image} ready ({seconds:.0f} s)")
    workdir = args.workdir
    scratch = workdir / "scratch"
    subprocess.run(["rm", "-rf", str(scratch)], check=True)
    scratch.mkdir(parents=True)
    origins = prepare(workdir)
    release = action_release(scratch / "release")
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                               f"--base-path={workdir / 'served'}", "--listen=127.0.0.1", f"--port={port}",
                               str(workdir / "served")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    results: dict[str, dict] = {}
    try:
        wait_for_port(port)
        with StoreServer(scratch / "store") as store, podman_service(engine, scratch) as docker_host:
            act = Act(docker_host, image, scratch / "act-home", {ACTION_REF: release})
            for name, origin in origins.items():
                url = f"git://127.0.0.1:{port}/{origin.name}"
                publish(origin, url, scratch / "store", store.url, scratch)
                runs = []
                for i in range(args.runs):
                    runs.append(one_run(act, url, scratch))
                    log(f"{name} run {i + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in runs[-1].items()))
                pack = sum(p.stat().st_size for p in (origin / "objects" / "pack").glob("*.pack"))
                results[name] = {"pack_bytes": pack, "runs": runs,
                                 "median": {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}}
    finally:
        daemon.terminate()
        daemon.wait()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))
    return 0


def table(results: dict[str, dict]) -> str:
    keys = ["git clone step", "checkout step", "mirrorci process", "overhead", "empty run step", "post step"]
    lines = ["| repository (pack) | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in results.items():
        m = r["median"]
        lines.append(f"| {name} ({r['pack_bytes'] / 1e6:.1f} MB) | " + " | ".join(f"{m[k]:.2f} s" for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
