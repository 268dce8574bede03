"""Continuous mode: commits of a framework (or model) repository built one by one, benchmarked
through pytest, their change points found and the first bad commit bisected.

git.py      the repository: commits chosen by range, date or count; clean work trees
builds.py   the build cache: one folder per commit, its program and log (reused when present)
bench.py    pytest run on one build (or A/B between two), its run file read back
changes.py  change points in the history store's runs, ordered by commit. Pure statistics.
bisect.py   binary search between a good and a bad commit, each step an A/B verdict
watch.py    follow a branch: each new commit (or every N-th) built and benchmarked
"""
