#!/usr/bin/env bash
# clang-format over native/'s C++ and CUDA sources, in the style of /.clang-format: with --check it only reports
# (and fails on) differences, for `npm run lint`; without, it rewrites the files, for `npm run format`.
# Releases of clang-format lay out some constructs differently; the style is kept with Debian 12's, clang-format 14,
# which native/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang-format >/dev/null; then
  echo "clang-format is missing: native/setup.sh installs it (as root), or apt-get install clang-format" >&2
  exit 1
fi
mapfile -t files < <(find native -name '*.h' -o -name '*.cpp' -o -name '*.cu' | sort)
if [ "${1:-}" = --check ]; then
  clang-format --dry-run --Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
