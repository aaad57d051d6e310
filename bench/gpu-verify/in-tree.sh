#!/usr/bin/env bash
# Runs one of the checkout's own commands on the CUDA host, from the tree the device tool sends, after run.sh has
# built the addons there (bench/gpu-verify/README.md, "The checkout's commands on the host"). Needs a package made
# with `npm run gpu:pack -- --runtime`: its runtime.tar.xz holds node_modules (the run-time dependencies and tsx)
# and WikiText-2.
#
#   bash .gpu-verify/in-tree.sh bench/train-step.ts --device cuda       (node --import tsx <file> <args>)
#   bash .gpu-verify/in-tree.sh bin/dpsm-native.mjs exp1 --profile wt2-small …
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${DPSM_VERIFY_WORK:-/tmp/dpsm-gpu-verify}
if [ ! -f "$work/addons.env" ]; then
  echo "in-tree.sh: no addons built here yet (run .gpu-verify/run.sh first, in the same call)" >&2
  exit 2
fi
# shellcheck source=/dev/null
source "$work/addons.env"
if [ ! -d "$work/runtime/node_modules" ]; then
  if [ ! -f "$here/runtime.tar.xz" ]; then
    echo "in-tree.sh: $here/runtime.tar.xz is missing (npm run gpu:pack -- --runtime)" >&2
    exit 2
  fi
  mkdir -p "$work/runtime"
  "${PYTHON:-python3}" -c 'import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),sys.stdout.buffer)' \
    "$here/runtime.tar.xz" | tar -x -C "$work/runtime" || exit 2
fi
[ -e "$repo/node_modules" ] || ln -s "$work/runtime/node_modules" "$repo/node_modules"
export DPSM_DATA_DIR=${DPSM_DATA_DIR:-$work/runtime} DPSM_CACHE_DIR=${DPSM_CACHE_DIR:-$work/cache}
export PATH="$work/bin:$PATH"
cd "$repo" || exit 2
case "$1" in
*.ts) exec node --import tsx "$@" ;;
*) exec node "$@" ;;
esac
