#!/usr/bin/env bash
# Formats kache's own C files with the checked-in .clang-format (Debian's
# clang-format). Usage: scripts/format.sh [--check] [file...]
#   --check   format nothing; list the files that would change, exit 1 if any.
# Without files: every *.c and *.h of the repository, tracked or new (not ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cf=$(command -v clang-format-14 || command -v clang-format) ||
  { echo "format: clang-format not found; run scripts/deps.sh" >&2; exit 2; }
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h'); fi
differ=0
for f in "${files[@]}"; do
  if [ $check -eq 1 ]; then
    "$cf" --style=file "$f" | cmp -s - "$f" || { echo "$f"; differ=1; }
  else
    "$cf" --style=file -i "$f"
  fi
done
exit $differ
