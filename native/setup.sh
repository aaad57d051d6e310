#!/usr/bin/env bash
# Installs what dpsm-native needs and builds it. Safe to run again: each step is skipped or incremental
# when already done. Used by `npm run quickstart`, `npm test` (pretest) and `npm run setup`.
#   1. libtorch + OpenBLAS + nlohmann-json + Gloo's headers (data-parallel training) + DejaVu fonts + clang-format
#      (npm run lint) + Chromium (the human-eval page's browser test, test/human-eval.test.ts, drives it through
#      playwright-core, which downloads no browser): Debian's packages when run as root; otherwise says what to install
#      (or uses the libtorch named by LIBTORCH / Torch_DIR); iproute2 too (`ip`: test/two-nodes.test.ts makes its
#      two machines as network namespaces).
#   2. npm dependencies, from the lockfile.
#   3. the native core (cmake-js; DPSM_CUDA=ON adds the CUDA kernels), and the TypeScript build (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[dpsm-native setup] %s\n' "$*"; }

debian_torch() { compgen -G "/usr/lib/*/cmake/Torch/TorchConfig.cmake" >/dev/null; }
openblas() { ldconfig -p 2>/dev/null | grep -q 'libopenblas'; }
json_headers() { [ -f /usr/include/nlohmann/json.hpp ]; }
gloo_headers() { [ -f /usr/include/gloo/algorithm.h ]; }
fonts() { [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; }
clang_format() { command -v clang-format >/dev/null; }
chromium_browser() { command -v chromium >/dev/null; }
iproute() { command -v ip >/dev/null; }

if { [ -z "${LIBTORCH:-}${Torch_DIR:-}" ] && { ! debian_torch || ! openblas; }; } || ! json_headers ||
  ! gloo_headers || ! fonts || ! clang_format || ! chromium_browser || ! iproute; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing libtorch-dev, libopenblas0-pthread, nlohmann-json3-dev, libgloo-dev, fonts-dejavu-core," \
      "clang-format, chromium and iproute2 from Debian (about 1 GB, once)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtorch-dev libopenblas0-pthread nlohmann-json3-dev \
      libgloo-dev fonts-dejavu-core clang-format chromium iproute2 >/dev/null
  else
    cat >&2 <<'MSG'
dpsm-native needs libtorch, OpenBLAS (fast CPU matrix products), nlohmann-json's and Gloo's headers
(data-parallel training), the DejaVu fonts (report figures), clang-format (npm run lint) and Chromium (the
human-eval page's browser test) and iproute2 (the two-machine test). Install them, then run this again:
  Debian/Ubuntu (as root):  apt-get install -y libtorch-dev libopenblas0-pthread nlohmann-json3-dev libgloo-dev \
                              fonts-dejavu-core clang-format chromium iproute2
  or any libtorch build:    export LIBTORCH=/path/to/libtorch   (the folder holding share/cmake/Torch)
MSG
    exit 1
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi

say "building the native core (incremental)"
mkdir -p build
cuda_flag=()
[ -n "${DPSM_CUDA:-}" ] && cuda_flag=(--CDDPSM_CUDA="$DPSM_CUDA")
if ! npx --no-install cmake-js compile --out build "${cuda_flag[@]}" >build/setup-native.log 2>&1; then
  tail -n 40 build/setup-native.log >&2
  echo "dpsm-native: the native build failed; the whole log is in build/setup-native.log" >&2
  exit 1
fi
npx --no-install tsc -p tsconfig.build.json
say "ready: $(node -e 'const m=require("./build/Release/dpsm_native.node").buildInfo(); console.log(`libtorch ${m.torchVersion}, ${m.cuda ? "CUDA" : "CPU"}, ${m.threads} threads, ${m.cpuIsa}`)')"
