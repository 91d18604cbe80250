#!/usr/bin/env bash
# A normal (non-editable) install works: build the wheel, install it into a fresh venv with no
# source tree beside it, and from another directory list the spaces, sample the default space
# and build a preset. The package's own search spaces and experiments must come with the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m pip wheel -q --no-deps -w "$work/dist" .
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q torch==2.13.0  # the CPU build (plain torch is a CUDA build)
"$work/venv/bin/python" -m pip install -q "$work"/dist/archlab-*.whl
mkdir "$work/elsewhere"
cd "$work/elsewhere"
where=$("$work/venv/bin/python" -c "import archlab, os; print(os.path.dirname(archlab.__file__))")
case "$where" in
  "$work/venv/"*) ;;
  *) echo "wheel check: archlab imported from $where, not from the fresh venv" >&2; exit 1 ;;
esac
set -x
"$work/venv/bin/archlab" spaces | grep -q interleave
"$work/venv/bin/archlab" sample interleave -n 1
"$work/venv/bin/archlab" build p3d63 | tail -n 3
"$work/venv/bin/archlab" experiment list | grep -q p3d_table1
