# The image of the mirrorci GitHub Actions (action.yml, checkout/action.yml) and
# GitLab CI/CD components (templates/). Runs as root in the directory the runner
# chooses: container actions need both, so there is no USER and no WORKDIR here.
FROM debian:bookworm-slim

# git for everything mirrorci does, Python to run it. Versions come from the
# Debian release the base image names (bookworm), which receives security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates git python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

COPY . /opt/mirrorci/src/

# Pinned requirements from requirements.lock, then the package itself without
# dependencies. A wheels/ directory in the build context makes the build work
# without a package index: the requirements' wheels plus setuptools and wheel,
# made with `pip wheel --no-deps -r requirements.lock setuptools wheel -w wheels/`.
RUN python3 -m venv /opt/mirrorci/venv \
 && src=/opt/mirrorci/src \
 && if [ -d "$src/wheels" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS="$src/wheels"; fi \
 && /opt/mirrorci/venv/bin/pip install --no-cache-dir -r "$src/requirements.lock" \
 && /opt/mirrorci/venv/bin/pip install --no-cache-dir --no-deps "$src" \
 && rm -rf "$src/wheels" "$src/build" "$src"/*.egg-info \
 && chmod 755 "$src/entrypoint.py" \
 && ln -s "$src/entrypoint.py" /usr/local/bin/mirrorci-ci \
 && /opt/mirrorci/venv/bin/mirrorci --version

# The venv first on PATH: `mirrorci` and `mirrorci-ci` (the entry point, for
# GitLab jobs and hooks) run with the installed packages.
ENV PATH=/opt/mirrorci/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/mirrorci/venv/bin/python", "/opt/mirrorci/src/entrypoint.py"]
