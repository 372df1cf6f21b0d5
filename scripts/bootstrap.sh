# Sourced by scripts/demo and scripts/test: install what mirrorci needs on a
# fresh Debian machine (apt packages if missing, Python packages), then put
# the right Python first on PATH. BOOTSTRAP_FOR=demo installs only what the
# main job needs; the default (test) adds the servers and tools the tests start.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOOTSTRAP_FOR=${BOOTSTRAP_FOR:-test}
APT_PACKAGES=(git python3 python3-venv python3-pip ca-certificates)

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv python3-pip)
if [ "$BOOTSTRAP_FOR" = test ]; then
APT_PACKAGES+=(transmission-daemon opentracker iproute2)
# BitTorrent: a seeding daemon and a tracker for the torrent tests, ip for their network namespaces.
command -v transmission-daemon >/dev/null 2>&1 || missing+=(transmission-daemon)
command -v opentracker >/dev/null 2>&1 || missing+=(opentracker)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# Git LFS: the client the LFS tests drive (checkout --lfs needs it on runners too).
APT_PACKAGES+=(git-lfs)
command -v git-lfs >/dev/null 2>&1 || missing+=(git-lfs)
# sshd (and ssh-keygen): the ssh origin tests start their own sshd on 127.0.0.1.
APT_PACKAGES+=(openssh-server openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
# The container image test (root only): buildah builds on a debootstrap base, podman runs it with runc.
if [ "$(id -u)" -eq 0 ]; then
  APT_PACKAGES+=(buildah podman debootstrap runc)
  for tool in buildah podman debootstrap runc; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
  done
fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
fi

PY=${PYTHON:-python3}
# Debian's own Python refuses system-wide pip installs (PEP 668): use a venv there.
if ! "$PY" -m pip --version >/dev/null 2>&1 || \
   [ -f "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]; then
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    "$PY" -m venv "$ROOT/.venv" || { echo "error: python3 -m venv failed; install python3-venv" >&2; exit 2; }
  fi
  export PATH="$ROOT/.venv/bin:$PATH"
  PY="$ROOT/.venv/bin/python"
fi
extra=""; [ "$BOOTSTRAP_FOR" = test ] && extra="[test]"
"$PY" -m pip install -q --disable-pip-version-check -e "$ROOT$extra"
export PY
