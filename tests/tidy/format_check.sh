#!/usr/bin/env bash
# Fails when a C++ file under src/, tests/ or tools/ differs from what clang-format produces.
# Fix with ./skiff.sh format.
set -euo pipefail
root="${1:?usage: format_check.sh <repo root>}"
cd "$root"
mapfile -t files < <(find src tests tools -type f \( -name '*.h' -o -name '*.cc' \) \
  -not -path 'tests/tidy/testdata/*' | sort)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
echo "format check: ${#files[@]} files, ${#bad[@]} not formatted"
if [ ${#bad[@]} -gt 0 ]; then
  printf '  %s\n' "${bad[@]}"
  echo "run ./skiff.sh format"
  exit 1
fi
