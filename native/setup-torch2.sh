#!/usr/bin/env bash
# Builds dpsm-native a second time, against libtorch 2.x (the one inside PyPI's `torch` wheel) beside the
# default build against Debian's libtorch 1.13, so CI compiles and tests the 2.x side of native/core/platform.h
# with no GPU. Safe to run again: the download is skipped and the build is incremental when already done.
# Used by `npm test` (test/run.mjs, its libtorch 2.x subset) and `npm run setup:torch2`.
#   native/setup-torch2.sh           the CPU build below, into build-torch2/
#   native/setup-torch2.sh --runtime the pinned torch with all its dependencies, as `pip install` gives it (below)
#   native/setup-torch2.sh --cuda    the CUDA flavour instead (the artefact a CUDA user builds: the kernels by nvcc,
#                                    the core linked to the wheel's libtorch_cuda), into build-torch2-cuda/; it
#                                    compiles and links here, it cannot load without a GPU's libraries
#   1. the pinned torch wheel (no dependencies, ~540 MB download) into .cache/torch2: only its headers,
#      libtorch_cpu.so, libc10.so, libgomp and (for --cuda) libtorch_cuda.so and libc10_cuda.so are kept; the
#      wheel itself is deleted (not cached);
#   2. NVIDIA's CUDA runtime and CUPTI wheels (~55 MB) beside it: the wheel is a CUDA build and libtorch_cpu.so
#      needs libcudart.so.13 and libcupti.so.13 to load (found through its RPATH, ../../nvidia/cu13/lib), even
#      on a machine with no GPU. Nothing else of CUDA (cuBLAS, cuDNN, NCCL) is needed: see CMakeLists.txt;
#   3. for --cuda, the headers of NCCL, cuBLAS, cuSPARSE and cuSOLVER (their wheels, ~1 GB, downloaded once; only
#      the headers are kept, in .cache/torch2/cuda-headers): c10d's ProcessGroupNCCL, which data-parallel CUDA runs
#      take, includes nccl.h and ATen/cuda/CUDAContext.h (which includes the others), and its Options hold NCCL's
#      ncclConfig_t, so they are the releases torch was built with. The libraries themselves are libtorch_cuda.so's
#      own needs at run time (a CUDA torch install has them);
#   4. cmake-js into build-torch2/ (the product addon and the testing addon), with DPSM_TORCH_ROOT (--cuda: also
#      DPSM_CUDA and nvcc from native/setup-nvcc.sh, into build-torch2-cuda/).
# Prints the path of the product addon on its last line; the testing addon is build-torch2/testing/.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[dpsm-native torch2] %s\n' "$*" >&2; }

cuda=0
[ "${1:-}" = "--cuda" ] && cuda=1

# One release of each, so every machine builds against the same libtorch. The wheel's libtorch does not
# depend on the Python version; cp311 is named so that any local Python downloads the same file.
TORCH=torch==2.15.0
WHEELS=(nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86)
# For --cuda, the headers c10d's ProcessGroupNCCL needs and torch does not ship: NCCL's, and cuBLAS', cuSPARSE's and
# cuSOLVER's (ATen/cuda/CUDAContext.h includes them), of the releases torch 2.15's wheel names in its requirements
# (directly, and through cuda-toolkit[...]==13.2.2: pip install --dry-run --report shows them).
HEADER_WHEELS=(nvidia-nccl-cu13==2.30.7 nvidia-cublas==13.4.1.3 nvidia-cusparse==12.7.10.12 nvidia-cusolver==12.2.0.11)

# --runtime: the pinned torch as a user has it, `pip install torch==<pin>` with every dependency (its CUDA libraries:
# cuBLAS, cuDNN, NCCL, …; ~4 GB, once) into .cache/torch2-runtime, for test/tarball-install.test.ts's CUDA host
# without a GPU (the prebuilt CUDA core must load there). Prints the folder python3 imports it from (PYTHONPATH).
if [ "${1:-}" = "--runtime" ]; then
  runtime=.cache/torch2-runtime
  if [ "$(cat "$runtime/.installed" 2>/dev/null)" != "$TORCH" ]; then
    python=$(command -v python3 || command -v python || true)
    [ -n "$python" ] || { say "needs python3 with pip, to install $TORCH"; exit 1; }
    say "installing $TORCH with its dependencies from PyPI into $runtime (~4 GB, once)"
    rm -rf "$runtime"
    "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-cache-dir \
      --target "$runtime" "$TORCH" >&2
    echo "$TORCH" >"$runtime/.installed"
  fi
  echo "$PWD/$runtime"
  exit 0
fi

dest=.cache/torch2
root="$PWD/$dest/torch"
stamp="$dest/.installed"
KEPT="headers cpu cuda"  # what the unpacking below keeps: a change of it unpacks again
out=build-torch2
[ $cuda = 1 ] && out=build-torch2-cuda

if [ ! -f "$root/lib/libtorch_cpu.so" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TORCH ${WHEELS[*]} $KEPT" ]; then
  python=$(command -v python3 || command -v python || true)
  if [ -z "$python" ]; then
    say "needs python3 with pip, to download the torch wheel"
    exit 1
  fi
  say "downloading $TORCH from PyPI into $dest (~540 MB, once)"
  rm -rf "$dest"
  mkdir -p "$dest/wheel"
  "$python" -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --dest "$dest/wheel" "$TORCH" >&2
  # Python's zipfile rather than unzip (one tool fewer to need): the headers and three libraries only.
  "$python" - "$dest"/wheel/torch-*.whl "$dest" <<'PY'
import sys, zipfile
keep = ("torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/lib/libgomp.so.1", "torch/version.py",
        "torch/lib/libtorch_cuda.so", "torch/lib/libc10_cuda.so")
with zipfile.ZipFile(sys.argv[1]) as whl:
    names = [n for n in whl.namelist() if n.startswith("torch/include/") or n in keep]
    whl.extractall(sys.argv[2], names)
PY
  rm -rf "$dest/wheel"
  say "installing ${WHEELS[*]} into $dest"
  "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$dest" "${WHEELS[@]}" >&2
  echo "$TORCH ${WHEELS[*]} $KEPT" >"$stamp"
fi

flags=(--CDDPSM_TORCH_ROOT="$root")
headers="$dest/cuda-headers"
if [ $cuda = 1 ] && [ "$(cat "$headers/.installed" 2>/dev/null)" != "${HEADER_WHEELS[*]}" ]; then
  say "downloading ${HEADER_WHEELS[*]} from PyPI for their headers (~1 GB, once; only the headers are kept)"
  rm -rf "$headers"
  mkdir -p "$headers/wheel"
  python=$(command -v python3 || command -v python)
  # pip matches an explicit --platform exactly: NVIDIA's wheels carry older manylinux tags than torch's.
  "$python" -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_18_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --dest "$headers/wheel" "${HEADER_WHEELS[@]}" >&2
  "$python" - "$headers/include" "$headers"/wheel/*.whl <<'PY'
import os, sys, zipfile
os.makedirs(sys.argv[1], exist_ok=True)
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as whl:
        for name in whl.namelist():
            if "/include/" in name and name.endswith(".h"):
                target = os.path.join(sys.argv[1], name.split("/include/", 1)[1])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(whl.read(name))
PY
  rm -rf "$headers/wheel"
  for h in nccl.h cublas_v2.h cublasLt.h cusparse.h cusolverDn.h; do
    [ -f "$headers/include/$h" ] || { say "no $h in ${HEADER_WHEELS[*]}"; exit 1; }
  done
  echo "${HEADER_WHEELS[*]}" >"$headers/.installed"
fi
if [ $cuda = 1 ]; then
  nvcc=$(bash native/setup-nvcc.sh)
  # DPSM_REQUIRE_TORCH_CUDA: a build that found no CUDA side in the wheel fails here rather than pass as CPU-only.
  flags+=(--CDDPSM_CUDA=ON --CDCMAKE_CUDA_COMPILER="$nvcc" --CDDPSM_REQUIRE_TORCH_CUDA=ON
    --CDDPSM_CUDA_HEADERS="$PWD/$headers/include")
fi

say "building the native core against $root into $out/ (incremental)"
# cmake-js compile configures only a folder that has no CMakeCache.txt: start afresh if it names another root.
if [ -f "$out/CMakeCache.txt" ] && ! grep -qxF "DPSM_TORCH_ROOT:PATH=$root" "$out/CMakeCache.txt"; then
  rm -rf "$out"
fi
mkdir -p "$out"
if ! npx --no-install cmake-js compile --out "$out" "${flags[@]}" >"$out/setup-native.log" 2>&1; then
  tail -n 40 "$out/setup-native.log" >&2
  echo "dpsm-native: the libtorch 2.x build failed; the whole log is in $out/setup-native.log" >&2
  exit 1
fi
echo "$PWD/$out/Release/dpsm_native.node"
