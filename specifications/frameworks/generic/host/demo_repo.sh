#!/bin/sh
# A framework repository to try continuous mode on: COMMITS commits of a benchmark program
# (bench.c, specifications/programs/busy_loop.c with its work set), of which commit SLOW_AT
# (1-based) and every later one do 15% more work.
#
#   demo_repo.sh DIR [COMMITS] [SLOW_AT]      (20 and 13 by default)
set -eu
if [ $# -lt 1 ]; then
    echo "usage: demo_repo.sh DIR [COMMITS] [SLOW_AT]" >&2
    exit 2
fi
program="$(cd "$(dirname "$0")/../../../programs" && pwd)/busy_loop.c"
dir=$1 commits=${2:-20} slow_at=${3:-13}
mkdir -p "$dir"
cd "$dir"
git init -q -b main
number=1
while [ "$number" -le "$commits" ]; do
    work=300000
    [ "$number" -ge "$slow_at" ] && work=345000
    { echo "#define WORK $work"; cat "$program"; } > bench.c
    echo "commit $number" > NOTES
    git add bench.c NOTES
    git -c user.name=demo -c user.email=demo@example.invalid commit -q -m "change $number"
    number=$((number + 1))
done
echo "demo_repo.sh: $commits commits in $dir, 15% slower from commit $slow_at"
