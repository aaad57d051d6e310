#!/usr/bin/env bash
# npm run gpu:verify — packs .gpu-verify/ (npm run gpu:pack), then runs it here when this machine has a CUDA GPU
# and a Python torch; otherwise prints the one device-tool call that runs it on a lent GPU (README.md beside this).
#   npm run gpu:verify [-- ARGS]   ARGS go to run.sh (--device cuda|cpu, --quick, --budget-s S)
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent gpu:pack
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 &&
  python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  exec bash .gpu-verify/run.sh "$@"
fi
size=$(du -sm .gpu-verify | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb | tail -n 1 | awk '{ printf "%.0f", $1 / 1048576 }')
cat <<MSG

No CUDA GPU here. .gpu-verify/ is packed (${size} MiB; the tracked tree adds ~${tree} MiB of the 64 MiB a call
may send). In a session with a lent GPU, make this one call of the device tool's run (about 5-8 minutes):
  command: bash .gpu-verify/run.sh
  carry:   [".gpu-verify"]
  timeout_s: 600
Its files come back under \$OUT: gpu-verify.json, gpu-verify.md, host.json, build.log, run.log.
MSG
