# The image of the mirrorci publish action (action.yml), of the GitLab CI/CD
# components (templates/), and of `docker run IMAGE mirrorci ...`. Runs as root in
# the directory the runner chooses: container actions need both, so there is no
# USER and no WORKDIR here. Released images are pushed by .github/workflows/image.yml.
FROM debian:bookworm-slim

# git for everything mirrorci does, Python to run it. Versions come from the
# Debian release the base image names (bookworm), which receives security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates git python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

# The pinned requirements before the source, so this layer is rebuilt only when
# requirements.lock changes. A wheels/ directory in the build context (`wheel[s]`
# copies it when present) makes the build work without a package index: the
# requirements' wheels plus setuptools and wheel, made with
# `pip wheel --no-deps -r requirements.lock setuptools wheel -w wheels/`.
COPY requirements.lock wheel[s] /opt/mirrorci/deps/
RUN python3 -m venv /opt/mirrorci/venv \
 && deps=/opt/mirrorci/deps \
 && if ls "$deps"/*.whl >/dev/null 2>&1; then export PIP_NO_INDEX=1 PIP_FIND_LINKS="$deps"; fi \
 && /opt/mirrorci/venv/bin/pip install --no-cache-dir -r "$deps/requirements.lock"

# Then the package itself, without dependencies: a change to the source rebuilds
# only this layer. The wheels, if any, leave with it.
COPY pyproject.toml README.md LICENSE entrypoint.py /opt/mirrorci/src/
COPY mirrorci/ /opt/mirrorci/src/mirrorci/
RUN deps=/opt/mirrorci/deps src=/opt/mirrorci/src \
 && if ls "$deps"/*.whl >/dev/null 2>&1; then export PIP_NO_INDEX=1 PIP_FIND_LINKS="$deps"; fi \
 && /opt/mirrorci/venv/bin/pip install --no-cache-dir --no-deps "$src" \
 && rm -rf "$deps" "$src/build" "$src"/*.egg-info \
 && chmod 755 "$src/entrypoint.py" \
 && ln -s "$src/entrypoint.py" /usr/local/bin/mirrorci-ci \
 && ln -s /opt/mirrorci/venv/bin/mirrorci /usr/local/bin/mirrorci \
 && /opt/mirrorci/venv/bin/mirrorci --version

# The venv first on PATH; `mirrorci` and `mirrorci-ci` (the CI mode, for GitLab
# jobs and hooks) are also in /usr/local/bin, which login shells (`bash -l`,
# whose /etc/profile resets PATH) still have.
ENV PATH=/opt/mirrorci/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
# mirrorci for its own commands and the actions' invocations, any other command
# as given (`sh -c ...`, `bash`, `git --version`): see mirrorci/launch.py.
ENTRYPOINT ["/opt/mirrorci/venv/bin/python", "/opt/mirrorci/src/entrypoint.py"]
