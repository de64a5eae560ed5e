# The two entry points of the README:
#   make demo    install everything, then run the main job
#   make check   install everything, then run the whole test suite (what CI runs)
.PHONY: setup demo check

setup:
	./tools/setup

demo: setup
	./tools/demo

check: setup
	./tools/run-checks
