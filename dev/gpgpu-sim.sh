#!/usr/bin/env bash
# The fused CUDA kernel (native/kernels/dpsm_cuda.cu) on a GPU simulator, without a GPU: GPGPU-Sim's functional (PTX)
# mode runs it on tiny shapes (dev/gpgpu-sim/sim-fused.cu) and the CPU kernel checks every loss, statistic and
# gradient (dev/gpgpu-sim/cpu-compare.cpp). Not part of `npm test`: the first run builds the simulator (~10 minutes
# on one core); later runs reuse .cache/gpgpu-sim and take about a minute. Results:
# docs/results/2026-12-07-xeon-2core/gpgpu-sim.md.
#
# What it puts together, once, under .cache/gpgpu-sim (or $GPGPUSIM_CACHE):
#   - CUDA 11.8 (GPGPU-Sim supports CUDA ≤ 11): PyPI's nvidia-*-cu11 wheels hold ptxas, the headers, libdevice and
#     libcudart but no nvcc driver, cicc or cuobjdump; those come from Debian 12's nvidia-cuda-toolkit 11.8.89 (the
#     package is only unpacked, from non-free through a private apt source list; nothing is installed);
#   - GPGPU-Sim at a fixed commit, from $GPGPUSIM_GIT (a clone or bare mirror) or GitHub, with
#     dev/gpgpu-sim/gpgpu-sim.patch (build fixes for Debian 12 and four simulator fixes the kernel needs);
#   - Debian packages to build it: bison flex xutils-dev zlib1g-dev (installed when run as root).
# The kernel is compiled for sm_75 (the newest configuration GPGPU-Sim ships, SM75_RTX2060): sm_80 PTX carries
# bf16 conversions (cvt.rn.bf16x2.f32) the simulator's PTX parser has no type for. Extracted PTX goes through
# dev/gpgpu-sim/cuobjdump, which rewrites three idioms the simulator mishandles (see that file).
# Environment: JOBS (make -j, default 1), SIM_DTYPES (default "012": f32, bf16, f16).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
here=$root/dev/gpgpu-sim
cache=${GPGPUSIM_CACHE:-$root/.cache/gpgpu-sim}
commit=90ec3399763d7c8512cfe7dc193473086c38ca38
deb=nvidia-cuda-toolkit=11.8.89~11.8.0-5~deb12u1
wheels=(nvidia-cuda-nvcc-cu11==11.8.89 nvidia-cuda-runtime-cu11==11.8.89 nvidia-cuda-profiler-api-cu11==11.8.86)
say() { printf '[gpgpu-sim] %s\n' "$*" >&2; }
mkdir -p "$cache"

# ---- Debian packages ---------------------------------------------------------------------------------------
missing=()
for p in bison flex xutils-dev zlib1g-dev; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing packages: ${missing[*]} (apt-get install them as root)"
    exit 1
  fi
  apt-get install -y "${missing[@]}" >&2
fi

# ---- CUDA 11.8 -------------------------------------------------------------------------------------------------
cuda=$cache/cuda-11.8
stamp="$deb ${wheels[*]}"
if [ "$(cat "$cuda/.installed" 2>/dev/null)" != "$stamp" ]; then
  say "assembling CUDA 11.8 in $cuda (PyPI wheels + Debian's nvidia-cuda-toolkit, ~110 MB downloaded)"
  rm -rf "$cuda" "$cache/dl"
  mkdir -p "$cache/dl/wheels" "$cache/dl/apt/lists/partial" "$cuda/bin" "$cuda/include" "$cuda/lib64" "$cuda/nvvm/bin"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$cache/dl/wheels" "${wheels[@]}" >&2
  for w in "$cache"/dl/wheels/*.whl; do python3 -m zipfile -e "$w" "$cache/dl/wheels/x"; done
  echo "deb http://deb.debian.org/debian bookworm main non-free" >"$cache/dl/apt/sources.list"
  apt=(-o Dir::Etc::sourcelist="$cache/dl/apt/sources.list" -o Dir::Etc::sourceparts=- -o
    Dir::State::Lists="$cache/dl/apt/lists" -o Debug::NoLocking=1)
  apt-get "${apt[@]}" update >/dev/null
  (cd "$cache/dl" && apt-get "${apt[@]}" download "$deb" 2>/dev/null)
  dpkg-deb -x "$cache"/dl/nvidia-cuda-toolkit_*.deb "$cache/dl/deb"
  x=$cache/dl/wheels/x/nvidia
  cp -r "$x"/cuda_runtime/include/. "$x"/cuda_nvcc/include/. "$x"/cuda_profiler_api/include/. "$cuda/include/"
  cp "$x"/cuda_runtime/lib/libcudart.so.11.0 "$cuda/lib64/" && ln -s libcudart.so.11.0 "$cuda/lib64/libcudart.so"
  cp -r "$x"/cuda_nvcc/nvvm/libdevice "$cuda/nvvm/" && cp "$x"/cuda_nvcc/bin/ptxas "$cuda/bin/"
  chmod +x "$cuda/bin/ptxas"  # zipfile extraction drops the mode bits
  d=$cache/dl/deb/usr
  cp "$d"/lib/nvidia-cuda-toolkit/bin/nvcc "$d"/bin/{cudafe++,fatbinary,nvlink,bin2c,cuobjdump,nvdisasm} "$cuda/bin/"
  cp -r "$d"/lib/nvidia-cuda-toolkit/bin/crt "$cuda/bin/" && cp "$d"/lib/nvidia-cuda-toolkit/bin/cicc "$cuda/nvvm/bin/"
  # NVIDIA's own layout, relative to the nvcc binary (Debian's profile points into /usr).
  cat >"$cuda/bin/nvcc.profile" <<'PROFILE'
TOP              = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
LD_LIBRARY_PATH += $(TOP)/lib64:
PATH            += $(TOP)/nvvm/bin:$(_HERE_):
INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)
LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib64"
CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
PROFILE
  rm -rf "$cache/dl"
  echo "$stamp" >"$cuda/.installed"
fi
"$cuda/bin/nvcc" --version | grep -q "release 11.8" || { say "$cuda/bin/nvcc is not CUDA 11.8"; exit 1; }

# ---- GPGPU-Sim -----------------------------------------------------------------------------------------------
src=$cache/gpgpu-sim
stamp="$commit $(sha256sum "$here/gpgpu-sim.patch" | cut -c1-16)"
lib=$src/lib/gcc-/cuda-11080/release
if [ "$(cat "$src/.built" 2>/dev/null)" != "$stamp" ]; then
  git=${GPGPUSIM_GIT:-$cache/gpgpu-sim.git}
  if [ -z "${GPGPUSIM_GIT:-}" ] && [ ! -d "$git" ]; then
    git clone --bare --quiet https://github.com/gpgpu-sim/gpgpu-sim_distribution "$git"
  fi
  rm -rf "$src" && mkdir -p "$src"
  git -C "$git" archive "$commit" | tar -x -C "$src"
  (cd "$src" && patch -p1 --quiet <"$here/gpgpu-sim.patch")
  say "building GPGPU-Sim (make -j${JOBS:-1}; log in $cache/build.log)"
  (
    cd "$src"
    export CUDA_INSTALL_PATH=$cuda PATH=$cuda/bin:$PATH
    set +eu
    source setup_environment release
    nice -n 10 make -j"${JOBS:-1}"
  ) >"$cache/build.log" 2>&1 || { say "build failed: tail $cache/build.log"; exit 1; }
  # Its version detection names the folder after `gcc --version`'s x.y.z, which it misses for GCC ≥ 10.
  lib=$(ls -d "$src"/lib/*/cuda-11080/release | head -n 1)
  [ -e "$lib/libcudart.so.11.0" ] || { say "no libcudart.so.11.0 under $src/lib"; exit 1; }
  echo "$stamp" >"$src/.built"
fi
lib=$(ls -d "$src"/lib/*/cuda-11080/release | head -n 1)

# ---- The kernel on the simulator, then the CPU kernel on the same inputs ----------------------------------------
run=$cache/run
rm -rf "$run" && mkdir -p "$run/toolkit/bin"
"$cuda/bin/nvcc" -allow-unsupported-compiler -std=c++17 -O2 -arch=sm_75 -cudart shared -cudadevrt none \
  -I native/kernels "$here/sim-fused.cu" -o "$run/sim-fused"
g++ -std=c++20 -O2 -DDPSM_CPU_VARIANT=baseline -DDPSM_VEC_WIDTH=4 -I native/kernels native/kernels/dpsm_cpu.cpp \
  "$here/cpu-compare.cpp" -o "$run/cpu-compare"
# The simulator calls $CUDA_INSTALL_PATH/bin/{cuobjdump,ptxas}: a toolkit folder whose cuobjdump is the rewriter.
cp "$here/cuobjdump" "$run/toolkit/bin/cuobjdump"
ln -s "$cuda/bin/ptxas" "$cuda/bin/nvdisasm" "$run/toolkit/bin/"
cp "$src"/configs/tested-cfgs/SM75_RTX2060/* "$run/"
say "running the kernel on GPGPU-Sim (functional mode, SM75_RTX2060; log in $run/sim.log)"
(
  cd "$run"
  # PTX_SIM_MODE_FUNC=1: functional simulation. CUOBJDUMP_SIM_FILE (any value) skips a section-list step that this
  # commit runs on an empty list under CUDA ≥ 6 and aborts in ("No PTX sections found").
  CUDA_INSTALL_PATH=$run/toolkit REAL_CUOBJDUMP=$cuda/bin/cuobjdump LD_LIBRARY_PATH=$lib PTX_SIM_MODE_FUNC=1 \
    CUOBJDUMP_SIM_FILE=none SIM_DTYPES=${SIM_DTYPES:-012} ./sim-fused sim-out.bin >sim.log 2>&1
) || { say "the simulation failed: tail $run/sim.log"; exit 1; }
"$run/cpu-compare" "$run/sim-out.bin"
