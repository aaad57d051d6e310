#!/usr/bin/env bash
# The kernel probe of `npm run gpu:verify`, started by run.sh beside the addons' build (in a process group of its
# own, which run.sh and checks.mjs end when its time is up): compiles kernel-probe.cu with the host's nvcc for the
# host's GPU, checks the kernel's e^x (exp2 stage), then runs the probe's tiny shapes under each compute-sanitizer
# tool (sanitizer stage). Leaves its results as files in DIR for checks.mjs:
#   started, exp2.json/.log/.rc, sanitizer-path or no-sanitizer, <tool>.log/.rc, failed (why), done.
#
#   bash probe.sh DIR ARCH SANITIZER      ARCH: e.g. 90 (sm_90); SANITIZER: compute-sanitizer's path, or "" for none
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
arch=$2
sanitizer=$3
touch "$dir/started"
if ! nvcc -O3 -lineinfo -std=c++17 -arch="sm_$arch" -I "$here/src/native/kernels" -o "$dir/kernel-probe" \
  "$here/kernel-probe.cu" >"$dir/compile.log" 2>&1; then
  echo "the kernel probe did not compile: $(tail -n 3 "$dir/compile.log" | tr '\n' ' ')" >"$dir/failed"
  touch "$dir/done"
  exit 1
fi
timeout 30 "$dir/kernel-probe" exp2 >"$dir/exp2.json" 2>"$dir/exp2.log"
echo $? >"$dir/exp2.rc"
if [ -n "$sanitizer" ]; then
  for tool in memcheck racecheck initcheck synccheck; do
    # --error-exitcode: any error the tool reports fails the run, whatever the program's own exit code.
    timeout 80 "$sanitizer" --tool "$tool" --error-exitcode 9 "$dir/kernel-probe" sanitize >"$dir/$tool.log" 2>&1
    echo $? >"$dir/$tool.rc"
  done
fi
touch "$dir/done"
