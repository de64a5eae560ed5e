"""Side-by-side start-up benchmark of slr, its fast start and compact forms, runc and crun.

Run it as `bench/run` (or `python -m bench` from the repository root); see README.md.
"""
