#!/usr/bin/env bash
# npm run gpu:verify — packs .gpu-verify/ (npm run gpu:pack; with --runtime when DPSM_DATA_DIR holds WikiText-2,
# for the step and wt2-small stages), then runs it here when this machine has a CUDA GPU and a Python torch;
# otherwise prints the one device-tool call that runs it on a lent GPU (README.md beside this).
#   npm run gpu:verify [-- ARGS]   ARGS go to run.sh (--device cuda|cpu, --quick, --budget-s S, --only a,b)
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=()
if [ -n "${DPSM_DATA_DIR:-}" ] && [ -d "$DPSM_DATA_DIR/wikitext-2" ]; then
  # Without the anchors' wheels (0.9 MiB): with the runtime and the tree a call is within ~2 MiB of its 64
  # (2026-12-07), and the anchors are the last stage, rarely reached in one call.
  pack=(-- --runtime --no-wheels)
else
  echo "gpu:verify: DPSM_DATA_DIR has no wikitext-2: packed without runtime.tar.xz, so the step and wt2-small stages will be skipped" >&2
fi
npm run --silent gpu:pack "${pack[@]}"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 &&
  python3 -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  exec bash .gpu-verify/run.sh "$@"
fi
size=$(du -sm .gpu-verify | cut -f1)
tree=$( (git ls-files -z && git ls-files -z -o --exclude-standard) | xargs -0 du -cb 2>/dev/null | awk '/total$/ { s += $1 } END { printf "%.0f", s / 1048576 }')
if [ $((size + tree)) -ge 64 ]; then
  echo "gpu:verify: .gpu-verify (${size} MiB) and the tree (~${tree} MiB) are over the 64 MiB a device call may send" >&2
  exit 1
fi
cat <<MSG

No CUDA GPU here. .gpu-verify/ is packed (${size} MiB; the tracked and untracked tree adds ~${tree} MiB: together
they must stay under the 64 MiB a call may send). In a session with a lent GPU, make this one call of the device
tool's run (8 minutes at most: the script's budget is 450 s):
  command: bash .gpu-verify/run.sh
  carry:   [".gpu-verify"]
  timeout_s: 480
Its files come back under \$OUT/<date>-<card>/: gpu-verify.md and .json, host.json, build.log, run.log,
addons.tar.xz, stage-logs.tar.xz, wt2-small-report.md.
MSG
