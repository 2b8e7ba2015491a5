#!/usr/bin/env bash
# The Python interpreter `make` builds the virtual environment with.
#
#   tools/find_python.sh          # $PYTHON if set, else the newest supported one found
#   PYTHON=python3.12 tools/find_python.sh
#   tools/find_python.sh 3.13     # that version only (CI's second run)
#
# Prints the interpreter's path on stdout; says on stderr why nothing fits.
# A candidate must run (an inactive pyenv shim exits with "command not found")
# and be a supported, GIL-enabled CPython: grpcio has no wheels for
# free-threaded builds (python3.13t). Where a name on PATH does not
# run, pyenv's installed versions ($PYENV_ROOT/versions/X.Y.*) are tried too.
set -euo pipefail

# Newest first. Keep in step with requires-python in pyproject.toml (a test checks).
SUPPORTED=(3.13 3.12 3.11)

# probe CMD: "X.Y PATH" when CMD runs a usable CPython, nothing otherwise.
probe() {
  "$1" -c 'import sys, sysconfig
if sys.implementation.name == "cpython" and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], sys.executable))' 2>/dev/null || true
}

is_supported() {
  local v
  for v in "${SUPPORTED[@]}"; do [ "$v" = "$1" ] && return 0; done
  return 1
}

# find_version X.Y: the path of a working pythonX.Y, or nothing.
find_version() {
  local version=$1 candidate found
  local -a candidates=("python$version")
  local root=${PYENV_ROOT:-$HOME/.pyenv}
  if [ -d "$root/versions" ]; then
    # Newest patch release first; names such as 3.13.0t are rejected by probe.
    while IFS= read -r dir; do
      candidates+=("$dir/bin/python$version")
    done < <(find "$root/versions" -mindepth 1 -maxdepth 1 -name "$version.[0-9]*" | sort -rV)
  fi
  for candidate in "${candidates[@]}"; do
    found=$(probe "$candidate")
    if [ "${found%% *}" = "$version" ]; then
      echo "${found#* }"
      return 0
    fi
  done
  return 1
}

install_hint() {
  printf '%s\n' >&2 \
    "Install one of them, then run make again:" \
    "  Debian/Ubuntu:  sudo apt-get install python3 python3-venv   (Ubuntu 24.04: 3.12, Debian 13: 3.13)" \
    "  pyenv:          pyenv install 3.13" \
    "or name an interpreter:  make run PYTHON=/path/to/python3.12"
}

if [ $# -gt 0 ]; then
  if ! is_supported "$1"; then
    echo "find_python: Python $1 is not supported (supported: ${SUPPORTED[*]})" >&2
    exit 2
  fi
  find_version "$1" && exit 0
  echo "find_python: no working python$1 found (on PATH or among pyenv's versions)" >&2
  exit 1
fi

if [ -n "${PYTHON:-}" ]; then
  found=$(probe "$PYTHON")
  # A bare pythonX.Y is looked up like the automatic choice: PATH, then pyenv.
  if [ -z "$found" ] && [[ $PYTHON =~ ^python(3\.[0-9]+)$ ]] && is_supported "${BASH_REMATCH[1]}"; then
    path=$(find_version "${BASH_REMATCH[1]}") && found="${BASH_REMATCH[1]} $path"
  fi
  if [ -z "$found" ]; then
    echo "find_python: PYTHON=$PYTHON does not run as CPython (not found, an inactive pyenv shim, or a free-threaded build)" >&2
    exit 1
  fi
  if ! is_supported "${found%% *}"; then
    echo "find_python: PYTHON=$PYTHON is Python ${found%% *}; this project needs one of ${SUPPORTED[*]}" >&2
    exit 1
  fi
  echo "${found#* }"
  exit 0
fi

for version in "${SUPPORTED[@]}"; do
  find_version "$version" && exit 0
done
echo "find_python: no Python ${SUPPORTED[*]} found (tried python3.13, python3.12, python3.11 on PATH and pyenv's versions)" >&2
install_hint
exit 1
