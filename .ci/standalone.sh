#!/usr/bin/env bash
# The repository stands alone (called by .ci/run): no tracked file points at
# the machine it was written on or at documents that are not in it. Fails
# listing every match.
#
# - absolute home/work paths (/work/, /root/, /home/, /Users/, C:\Users\);
# - `../shared` (the directory beside the original checkout);
# - the design notes that never were in this repository (mcutils-spec.md,
#   docs/processes-readme-section.md, ARCHITECTURE.md): cite the README, the
#   code, or the public McUtils source (github.com/McCoyGroup/McUtils)
#   instead.
set -euo pipefail
cd "$(dirname "$0")/.."

patterns=(
    '(^|[^A-Za-z0-9_.~-])/(work|root|home|Users)/'
    '[A-Za-z]:\\Users\\'
    '\.\./shared'
    'mcutils-spec'
    'processes-readme-section'
    'ARCHITECTURE(\.md)?( section| [0-9])'
)
found=0
for p in "${patterns[@]}"; do
    # -I: text files only; this script names the patterns, so it is skipped.
    if hits=$(git grep -n -I -E -e "$p" -- . ':!.ci/standalone.sh'); then
        echo "tracked files match /$p/:" >&2
        echo "$hits" >&2
        found=1
    fi
done
((found == 0)) || { echo "FAIL: the repository points outside itself (above)" >&2; exit 1; }
echo "standalone: no machine paths, ../shared or out-of-repository documents in $(git ls-files | wc -l) tracked files"
