#!/usr/bin/env bash
# Makes sure a CUDA compiler is at hand for the CUDA kernels' compile test and `npm run build:cuda`, with no
# GPU needed. Prints the path of nvcc on its last line.
#   --disasm: prints the path of nvdisasm instead (the machine-code checks of test/cuda-sass.test.ts): the one
#   beside the machine's nvcc, else NVIDIA's nvdisasm wheel (~6 MB) installed once into .cache/cuda-disasm.
#   - nvcc on PATH, or CUDA_HOME/bin/nvcc, or /usr/local/cuda/bin/nvcc: used as it is;
#   - else NVIDIA's CUDA 13 compiler wheels from PyPI (nvcc, crt, nvvm, runtime headers, CCCL; ~350 MB) are
#     installed once into .cache/cuda-toolkit with pip. Machines of this project have no CUDA toolkit, so
#     this is how CI compiles the kernels.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[dpsm-native nvcc] %s\n' "$*" >&2; }

if [ "${1:-}" = "--disasm" ]; then
  nvcc=$(bash "$0" | tail -n 1)
  if [ -x "$(dirname "$nvcc")/nvdisasm" ]; then
    echo "$(dirname "$nvcc")/nvdisasm"
    exit 0
  fi
  # Its own folder, so the compiler's wheels (and their stamp) above stay as they are.
  wheel=nvidia-cuda-nvdisasm==13.5.37
  dest=.cache/cuda-disasm
  tool="$dest/nvidia/cu13/bin/nvdisasm"
  if [ ! -x "$tool" ] || [ "$(cat "$dest/.installed" 2>/dev/null)" != "$wheel" ]; then
    say "installing NVIDIA's nvdisasm from PyPI into $dest (~6 MB, once)"
    rm -rf "$dest"
    "$(command -v python3 || command -v python)" -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$dest" "$wheel" >&2
    echo "$wheel" >"$dest/.installed"
  fi
  echo "$PWD/$tool"
  exit 0
fi

for c in "$(command -v nvcc || true)" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" /usr/local/cuda/bin/nvcc; do
  if [ -n "$c" ] && [ -x "$c" ]; then
    echo "$c"
    exit 0
  fi
done

# One release of each wheel, so every machine compiles with the same compiler.
WHEELS=(nvidia-cuda-nvcc==13.5.37 nvidia-cuda-crt==13.5.37 nvidia-nvvm==13.5.37 nvidia-cuda-runtime==13.5.37
        nvidia-cuda-cccl==13.3.5.0.6)
dest=.cache/cuda-toolkit
nvcc="$dest/nvidia/cu13/bin/nvcc"
stamp="$dest/.installed"
if [ ! -x "$nvcc" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${WHEELS[*]}" ]; then
  python=$(command -v python3 || command -v python || true)
  if [ -z "$python" ]; then
    say "no nvcc and no python3 to install one with; install the CUDA toolkit (nvcc) or python3 + pip"
    exit 1
  fi
  say "installing NVIDIA's nvcc from PyPI into $dest (~350 MB, once)"
  rm -rf "$dest"
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest" "${WHEELS[@]}" >&2
  echo "${WHEELS[*]}" >"$stamp"
fi
echo "$PWD/$nvcc"
