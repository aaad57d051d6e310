#!/usr/bin/env bash
# The one command of `npm run gpu:verify` on a CUDA host (bench/gpu-verify/README.md). pack.ts copies it into
# the package (.gpu-verify/), which travels to the host with everything it needs but a Python torch:
#   node.xz (the node binary), checks.mjs + bench-fused-loss.mjs (the checks, bundled), src/ (CMakeLists.txt and
#   native/), include/ (Node-API, node-addon-api), nlohmann/ (nlohmann-json with its CMake config), assets/.
# It builds the addons against the host's torch (torch.utils.cmake_prefix_path), CUDA kernels on, and beside the
# build compiles and runs the kernel probe (probe.sh: the kernel's e^x, compute-sanitizer); then checks.mjs runs
# the stages of plan.ts, each in its time box, skipping what the budget (8 minutes from this script's start by
# default) or a missing tool leaves out. Everything goes into $OUT/<date>-<card>/: gpu-verify.json and
# gpu-verify.md, host.json, build.log, run.log, addons.tar.xz, stage-logs.tar.xz and wt2-small-report.md (8 files
# at most come back from a device call); one progress line per stage on stdout.
#
#   bash .gpu-verify/run.sh [--device cuda|cpu] [--quick] [--budget-s S] [--only a,b]  (arguments go to checks.mjs)
# Environment: OUT (default: .gpu-verify/out), PYTHON (default: python3), DPSM_TORCH_CMAKE_PREFIX (default: the
# Python torch's), DPSM_VERIFY_TORCH_ROOT (default: that torch's folder, for the second try), DPSM_VERIFY_WORK
# (build folder; default /tmp/dpsm-gpu-verify), DPSM_VERIFY_CUDA_ARCH (default: the host's own GPU).
set -uo pipefail
started_ms=$(date +%s%3N)
here=$(cd "$(dirname "$0")" && pwd)
top=${OUT:-$here/out}
work=${DPSM_VERIFY_WORK:-/tmp/dpsm-gpu-verify}
export DPSM_VERIFY_WORK=$work
rm -rf "$work/logs" "$work/probe"
mkdir -p "$top" "$work/bin" "$work/logs" "$work/probe"
# Until the host says which card it is: a folder named once host.json is written (below).
out=$top/.pending
mkdir -p "$out"
: >"$out/run.log"
say() { printf '[gpu-verify %(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$out/run.log"; }

device=cuda
only=
for ((i = 1; i <= $#; i++)); do
  j=$((i + 1))
  case "${!i}" in
  --device) device=${!j} ;;
  --only) only=${!j} ;;
  esac
done
[ "$device" = cpu ] && cuda=OFF || cuda=ON

py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null; then
  say "no $py: a Python with torch is needed (its libtorch is what the addon builds against)"
  exit 2
fi
# cmake and ninja may be the Python environment's own (pip's cmake and ninja packages put them beside python).
PATH="$("$py" -c 'import os,sys;print(os.path.dirname(sys.executable))'):$PATH"
# nvcc: on PATH, else the toolkit's usual places, else NVIDIA's compiler wheel inside the Python environment.
nvidia=$("$py" -c 'import importlib.util as u;s=u.find_spec("nvidia");print(list(s.submodule_search_locations)[0])' 2>/dev/null || true)
for d in /usr/local/cuda/bin "${CUDA_HOME:-/nonexistent}/bin" "$nvidia"/cu*/bin; do
  command -v nvcc >/dev/null && break
  [ -x "$d/nvcc" ] && PATH="$PATH:$d"
done
export PATH

say "node: unpacking"
"$py" -c 'import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),open(sys.argv[2],"wb"))' \
  "$here/node.xz" "$work/bin/node" && chmod +x "$work/bin/node"
node=$work/bin/node
if ! "$node" --version >>"$out/run.log" 2>&1; then
  say "the carried node does not run here"
  exit 2
fi

# What the host is: written first, so that even a failed build leaves it in $OUT.
"$py" - "$out/host.json" <<'PY' 2>>"$out/run.log"
import json, os, platform, shutil, subprocess, sys
info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
try:
    import torch
    info.update(torch=torch.__version__, torchCuda=torch.version.cuda, cmakePrefix=torch.utils.cmake_prefix_path,
                torchRoot=os.path.dirname(torch.__file__), cudaAvailable=torch.cuda.is_available())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpuMemoryGiB=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                    capability=f"{p.major}.{p.minor}")
except Exception as e:
    info["torchError"] = repr(e)
def first_line(cmd, pick=lambda line: True):
    exe = shutil.which(cmd[0])
    if not exe:
        return None
    lines = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True).stdout.splitlines()
    return next((line.strip() for line in lines if line.strip() and pick(line)), None)
info["cmake"] = first_line(["cmake", "--version"])
info["ninja"] = first_line(["ninja", "--version"])
info["nvcc"] = first_line(["nvcc", "--version"], lambda line: "release" in line)
info["nvidiaSmi"] = first_line(["nvidia-smi", "-L"])
info["driver"] = first_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
try:
    import transformers
    info["transformers"] = transformers.__version__
except Exception:
    info["transformers"] = None
# The results folder's name: the card's model (h100, h200, a100, ...), else its name in lower case.
import re
gpu = (info.get("gpu") or "").lower()
m = re.search(r"\b([a-z]\d{2,4}[a-z]?)\b", gpu.replace("nvidia", ""))
info["card"] = (m.group(1) if m else re.sub(r"[^a-z0-9]+", "-", gpu).strip("-")) or "cpu"
json.dump(info, open(sys.argv[1], "w"), indent=1)
PY
# One import of torch (above) for all the host's facts: each import costs seconds of the call.
hostfact() { "$py" -c 'import json,sys;v=json.load(open(sys.argv[1])).get(sys.argv[2]);print("" if v is None else v)' "$out/host.json" "$1" 2>/dev/null; }
card=$(hostfact card)
card=${card:-unknown}
[ "$device" = cpu ] && card=cpu
results=$top/$(date -u +%Y-%m-%d)-$card
rm -rf "$results"
mv "$out" "$results" && out=$results
cat "$out/host.json" >>"$out/run.log"
say "results in $out"

prefix=${DPSM_TORCH_CMAKE_PREFIX:-$(hostfact cmakePrefix)}
if [ -z "$prefix" ] || [ ! -d "$prefix/Torch" ]; then
  say "no libtorch CMake package found (torch.utils.cmake_prefix_path: '${prefix}')"
  exit 2
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
common=(
  "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DDPSM_CUDA="$cuda"
  -DCMAKE_JS_INC="$here/include/node-api;$here/include/node-addon-api"
  -DNODE_ADDON_API_DIR="$here/include/node-addon-api"
  -Dnlohmann_json_DIR="$here/nlohmann/share/cmake/nlohmann_json"
)
if [ "$cuda" = ON ]; then
  # The host's GPU, as torch reports it (sm_90 on an H100/H200); CMake's own "native" (3.24+) where torch cannot say.
  capability=$(hostfact capability)
  arch=${DPSM_VERIFY_CUDA_ARCH:-$([ -n "$capability" ] && echo "${capability/./}-real" || echo native)}
  common+=(-DCMAKE_CUDA_ARCHITECTURES="$arch" -DDPSM_REQUIRE_TORCH_CUDA=ON)
  nvcc=$(command -v nvcc || true)
  [ -n "$nvcc" ] && common+=(-DCMAKE_CUDA_COMPILER="$nvcc")
fi
# The kernel probe beside the build (probe.sh; CUDA only): its own process group, ended by checks.mjs when the
# sanitizer stage's box is over, and here at the end whatever happened.
probe_pgid=
probe=$work/probe
# With --only and neither probe stage named, no probe: it would share the GPU with the stages being timed.
if [ -n "$only" ] && ! [[ ",$only," =~ ,(exp2|sanitizer), ]]; then
  echo "--only $only names neither exp2 nor sanitizer" >"$probe/why"
  cp "$probe/why" "$probe/no-sanitizer"
elif [ "$cuda" = ON ]; then
  sanitizer=
  nvidia_bins=$("$py" -c 'import importlib.util as u,sys;s=u.find_spec("nvidia");[print(p) for p in (s.submodule_search_locations if s else [])]' 2>/dev/null || true)
  for c in "$(command -v compute-sanitizer || true)" "${CUDA_HOME:-/nonexistent}/bin/compute-sanitizer" \
    /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
    $(for d in $nvidia_bins; do echo "$d"/cu*/bin/compute-sanitizer "$d"/cuda_sanitizer_api/compute-sanitizer/compute-sanitizer; done); do
    if [ -n "$c" ] && [ -x "$c" ]; then
      sanitizer=$c
      break
    fi
  done
  if [ -n "$sanitizer" ]; then
    echo "$sanitizer" >"$probe/sanitizer-path"
  else
    echo "no compute-sanitizer on this host: it is not on PATH, not in a CUDA toolkit (/usr/local/cuda), not in the Python's nvidia wheels; pip's nvidia-cuda-sanitizer-api (CUDA 13; -cu12 for 12) ships it (nvidia/cu13/bin/compute-sanitizer)" >"$probe/no-sanitizer"
  fi
  if command -v nvcc >/dev/null; then
    sm=${arch%%-*}
    [ "$sm" = native ] && sm=90
    setsid bash "$here/probe.sh" "$probe" "$sm" "$sanitizer" >>"$work/logs/probe.log" 2>&1 &
    probe_pgid=$!
    echo "$probe_pgid" >"$probe/pgid"
    say "kernel probe (e^x, compute-sanitizer${sanitizer:+ at $sanitizer}) started beside the build"
  else
    echo "no nvcc on this host: the kernel probe (exp2, sanitizer stages) needs one" >"$probe/why"
  fi
else
  echo "a CPU run: the kernel probe is CUDA's" >"$probe/why"
  cp "$probe/why" "$probe/no-sanitizer"
fi
trap '[ -n "$probe_pgid" ] && kill -KILL -- "-$probe_pgid" 2>/dev/null' EXIT

configure() { # build folder, then how to find libtorch
  local dir=$1
  shift
  cmake -S "$here/src" -B "$dir" "${common[@]}" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$dir/Release" "$@" >>"$out/build.log" 2>&1
}
say "building against libtorch at $prefix (CUDA $cuda): log in build.log"
t0=$SECONDS
: >"$out/build.log"
# First the CMake package torch names (its TorchConfig). A CUDA torch's TorchConfig wants the whole toolkit
# (cuBLAS, NVTX, ...); the addon needs only the wheel's libtorch_cuda/libc10_cuda and the runtime headers, which
# CMakeLists.txt's DPSM_TORCH_ROOT links directly: the second try, where the first fails to configure or build.
attempts=("Torch_DIR=$prefix/Torch")
root=${DPSM_VERIFY_TORCH_ROOT:-$(hostfact torchRoot)}
[ "$cuda" = ON ] && [ -f "$root/lib/libtorch_cuda.so" ] && attempts+=("DPSM_TORCH_ROOT=$root")
ok=0
for attempt in "${attempts[@]}"; do
  build=$work/build-$cuda-${attempt%%=*}
  echo "== configure with -D$attempt" >>"$out/build.log"
  # DPSM_VERIFY_PREBUILT (the packaging test, test/gpu-verify-package.test.ts): configure only, then use the addons
  # of that build folder, so a CI run proves the configure step without the compile's minutes.
  if configure "$build" "-D$attempt" &&
    { [ -n "${DPSM_VERIFY_PREBUILT:-}" ] || timeout 300 cmake --build "$build" -j "$(nproc)" >>"$out/build.log" 2>&1; }; then
    ok=1
    break
  fi
  tail -n 25 "$out/build.log" >>"$out/run.log"
  say "the build with -D$attempt failed after $((SECONDS - t0)) s (its end is in run.log)"
done
addon=()
if [ "$ok" = 0 ]; then
  say "no build: see build.log; the stages that need no addon run"
  addon=(--no-addon)
fi
grep -E "dpsm: libtorch|WARNING|Warning" "$out/build.log" | head -n 5 | tee -a "$out/run.log"
if [ "$ok" = 0 ]; then
  :
elif [ -n "${DPSM_VERIFY_PREBUILT:-}" ]; then
  say "configured in $((SECONDS - t0)) s; using the addons of $DPSM_VERIFY_PREBUILT (DPSM_VERIFY_PREBUILT)"
  build=$DPSM_VERIFY_PREBUILT
else
  say "built in $((SECONDS - t0)) s"
  # The device machine keeps nothing between calls: the built addons come back in $OUT, so a later call can carry
  # them (DPSM_VERIFY_PREBUILT) instead of compiling again.
  tar -C "$build" -cf - Release/dpsm_native.node testing/dpsm_native_testing.node | xz -T0 -3 >"$out/addons.tar.xz" &&
    say "addons saved: $(du -h "$out/addons.tar.xz" | cut -f1) in addons.tar.xz"
fi

export DPSM_NATIVE_PATH=$build/Release/dpsm_native.node
export DPSM_TESTING_NATIVE_PATH=$build/testing/dpsm_native_testing.node
export DPSM_CACHE_DIR=$work/cache
export DPSM_PYTHON=$py # the checks' transformers comparison and the benchmark's Python column
# The benchmark's anchors (Liger-Kernel, cut-cross-entropy), carried as wheels: installed beside the host's torch
# for this call only (PYTHONPATH), never over it.
if compgen -G "$here/wheels/*.whl" >/dev/null; then
  if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
    "$here"/wheels/*.whl >>"$out/run.log" 2>&1; then
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
    say "anchors installed: $(cd "$here/wheels" && echo *.whl)"
  else
    say "the anchors' wheels did not install (run.log); their columns stay empty"
  fi
fi
# For in-tree.sh (the checkout's own commands, later in the same call).
declare -p DPSM_NATIVE_PATH DPSM_TESTING_NATIVE_PATH DPSM_PYTHON PYTHONPATH 2>/dev/null | sed 's/^declare -x /export /;s/^declare -- /export /' >"$work/addons.env"
say "running the stages on $device"
# The budget counts from this script's start: 450 s for the stages (no time box ends later), so the summary is
# written within the 8 minutes a device call is planned for; a --budget-s given to run.sh comes later and wins.
"$node" "$here/checks.mjs" --out "$out" --assets "$here/assets" --host-info "$out/host.json" --budget-s 450 \
  --started-at "$started_ms" --probe-dir "$probe" "${addon[@]}" "$@" 2>&1 | tee -a "$out/run.log"
status=${PIPESTATUS[0]}
# The logs of the stages' own programs, the probe's and the sanitizer's among them, in one file.
cp "$probe"/*.log "$work/logs/" 2>/dev/null
tar -C "$work" -cf - logs | xz -T0 -6 >"$out/stage-logs.tar.xz"
say "done (exit $status) in $((SECONDS)) s: $out/gpu-verify.md"
exit "$status"
