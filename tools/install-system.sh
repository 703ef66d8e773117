#!/usr/bin/env bash
# What the test suite needs from the machine, beyond Python and the venv: Debian's chromium and a
# CJK font for the browser tests (Playwright drives chromium; it never downloads a browser), Node.js
# with npm to build the page, and the MariaDB at 127.0.0.1:3306 (root, no password) running.
# `make test` runs this first, and so CI (.ci/run) does. `make run` runs `install-system.sh run`:
# only Node.js with npm, to build the page (the stack itself runs on SQLite, without a browser).
# What is missing is installed or started when this runs as root on Debian; otherwise it stops at
# once and says the one command to run. Without anything to do it changes nothing and prints
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

SELF="tools/install-system.sh"
FOR="${1:-test}" # test: everything the suite needs; run: what `make run` needs
[[ $FOR == test || $FOR == run ]] || { echo "usage: bash $SELF [test|run]" >&2; exit 2; }
MARIADBD=/usr/sbin/mariadbd
MARIADB_WAIT=30 # seconds MariaDB gets to answer once started

fail() {
  printf 'install-system: %s\n' "$*" >&2
  exit 1
}

missing_packages() {
  local package
  [[ $FOR == run ]] || for package in chromium fonts-wqy-microhei; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q ' installed$' || echo "$package"
  done
  # The machine's own Node.js brings its npm; Debian's packages are only for a machine without.
  command -v npm >/dev/null 2>&1 || echo nodejs npm
}

mariadb_answers() {
  mariadb -uroot -h127.0.0.1 -e 'select 1' >/dev/null 2>&1
}

install_packages() {
  local packages=("$@") who="the tests need" again="make test" command="sudo bash $SELF"
  if [[ $FOR == run ]]; then
    who="\`make run\` needs" again="make run" command+=" run"
  fi
  command -v apt-get >/dev/null 2>&1 || fail "$who ${packages[*]}, and this machine has no" \
    "apt-get: install them with its package manager, then run \`$again\` again."
  ((EUID == 0)) || fail "$who ${packages[*]}. Install them (once) with: $command"
  echo "install-system: installing ${packages[*]}" >&2
  apt-get update -qq || fail "apt-get update failed: check the network and /etc/apt/sources.list"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
}

start_mariadb() {
  [[ -x $MARIADBD ]] || fail "the storage tests need MariaDB at 127.0.0.1:3306 (root, no" \
    "password), and $MARIADBD is not installed: install and start it, then run \`make test\` again."
  ((EUID == 0)) || fail "MariaDB at 127.0.0.1:3306 does not answer. Start it with: sudo bash $SELF"
  echo "install-system: starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec "$MARIADBD"
  local second
  for ((second = 0; second < MARIADB_WAIT; second++)); do
    mariadb_answers && return
    sleep 1
  done
  fail "MariaDB did not answer at 127.0.0.1:3306 within $MARIADB_WAIT s of starting: see its" \
    "log (journalctl, or /var/log/mysql/)."
}

mapfile -t missing < <(missing_packages | tr ' ' '\n')
if ((${#missing[@]})); then
  install_packages "${missing[@]}"
fi
[[ $FOR == run ]] || mariadb_answers || start_mariadb
