#!/bin/sh
# Builds a framework checkout's benchmark program, as FAI-PEP's build.sh scripts do for theirs:
# aibench commits, watch and bisect run it in a clean work tree of each commit (the current
# folder; $AIBENCH_COMMIT is the commit), and --program names what it made.
#
#   build.sh SOURCE PROGRAM    compile SOURCE (C, relative to the work tree) into PROGRAM
#
# The program prints one observer row per timed run, as specifications/programs/busy_loop.c
# does; specifications/models/generic/busy_loop/busy_loop.json runs it as {program}.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: build.sh SOURCE PROGRAM" >&2
    exit 2
fi
cc -O2 -o "$2" "$1"
