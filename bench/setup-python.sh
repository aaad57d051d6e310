#!/usr/bin/env bash
# The Python side of `npm run bench:train-step`: a Python with PyTorch 2.x, whose torch.compile (Inductor) the
# bench compares against; where there is none (Debian's python3-torch is 1.13, which has no torch.compile), a venv
# in .cache/bench-venv with its own. Safe to run again: nothing is downloaded once the pinned release is
# there. Prints the Python to use on its last line.
#
# PyTorch's own CPU-only index is used when it answers (a ~200 MB wheel); otherwise PyPI's wheel, which is a CUDA
# build that pulls NVIDIA's runtime wheels (several GB, once) even where only the CPU is used.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bench python] %s\n' "$*" >&2; }

# A Python with PyTorch 2.x already there is used as it is: DPSM_BENCH_PYTHON, else python3 when its torch is
# 2.x or later (a GPU host's, which cannot reach PyPI).
for candidate in "${DPSM_BENCH_PYTHON:-}" "$(command -v python3 || true)"; do
  if [ -n "$candidate" ] &&
    "$candidate" -c 'import sys, torch; sys.exit(int(torch.__version__.split(".")[0]) < 2)' 2>/dev/null; then
    echo "$candidate"
    exit 0
  fi
done

# The same torch release as native/setup-torch2.sh builds against; NumPy only because torch warns without it.
PACKAGES=(torch==2.15.0 numpy)
venv=.cache/bench-venv
stamp="$venv/.installed"
py="$PWD/$venv/bin/python"

if [ "$(cat "$stamp" 2>/dev/null)" != "${PACKAGES[*]}" ]; then
  if [ ! -x "$py" ]; then
    python=$(command -v python3 || command -v python || true)
    if [ -z "$python" ]; then
      say "needs python3 (with its venv module) to create $venv"
      exit 1
    fi
    say "creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
  fi
  pip=("$py" -m pip install --quiet --disable-pip-version-check)
  if curl -fsS --max-time 10 -o /dev/null https://download.pytorch.org/whl/cpu/ 2>/dev/null; then
    say "installing ${PACKAGES[*]} (torch's CPU wheel, download.pytorch.org)"
    "${pip[@]}" --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple "${PACKAGES[@]}" >&2
  else
    say "download.pytorch.org does not answer: installing ${PACKAGES[*]} from PyPI (torch's CUDA build, with its NVIDIA wheels)"
    "${pip[@]}" "${PACKAGES[@]}" >&2
  fi
  echo "${PACKAGES[*]}" >"$stamp"
fi
echo "$py"
