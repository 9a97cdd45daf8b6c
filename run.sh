#!/usr/bin/env bash
# outguard on a fresh Debian/Ubuntu machine, as root:
#   ./run.sh demo   set up, then run the sandbox PBX and outguard with the demo policy
#   ./run.sh test   set up, then run the whole test suite (what CI runs)
#   ./run.sh setup  set up only (system packages, .venv, the sandbox chroot)
# Set-up is idempotent: a second run reuses everything already there.
set -euo pipefail
cd "$(dirname "$0")"

# chromium + chromium-driver: the dashboard's end-to-end test drives a headless browser;
# prometheus: its promtool checks the shipped alert rules (deploy/prometheus/);
# docker.io + docker-compose: the container test builds and runs deploy/docker/;
# fonts-wqy-microhei: a Chinese font, so the dashboard's zh screenshots show characters;
# postgresql + redis-server: the cluster-mode tests start their own servers
APT_PACKAGES=(debootstrap sip-tester ca-certificates chromium chromium-driver prometheus
              docker.io docker-compose fonts-wqy-microhei postgresql redis-server)
PYTHON=${PYTHON:-python3}
BIN_DIR=${BIN_DIR:-/usr/local/bin}

say() { printf '[run.sh] %s\n' "$*"; }

setup_system() {
  if [ "$(id -u)" != 0 ]; then
    say "needs root: the sandbox PBX is a chroot (run with sudo)"; exit 1
  fi
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    missing+=(python3 python3-venv)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    say "outguard needs Python >= 3.11 (found $("$PYTHON" --version 2>&1))"; exit 1; }
}

setup_python() {
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$PYTHON" -m venv .venv
  fi
  say "installing outguard and its test tools into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import outguard, rules, aiohttp, panoramisk, sqlite_utils, phonenumbers, psycopg, redis'
  # `outguard` on the PATH (the demo's banner and the README call it by name)
  ln -sfn "$PWD/.venv/bin/outguard" "$BIN_DIR/outguard"
  say "outguard is on the PATH: $BIN_DIR/outguard -> $PWD/.venv/bin/outguard"
}

setup_sandbox() {
  say "sandbox chroot (built once, then cached):"
  .venv/bin/outguard sandbox build
}

setup() { setup_system; setup_python; setup_sandbox; }

case "${1:-}" in
  setup) setup ;;
  demo) setup; shift; exec .venv/bin/outguard demo "$@" ;;
  test)
    setup
    shift
    say "running the whole test suite"
    exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
    ;;
  *) sed -n '2,6p' "$0"; exit 2 ;;
esac
