# The two entry points of the README:
#   make demo    install everything, then run the main job
#   make check   install everything, then run the whole test suite (what CI runs)
# Both build the compact frozen slr of each architecture first (tools/build-compact:
# rebuilt only when its inputs changed); the QEMU CI image carries it as /usr/bin/slr.
.PHONY: setup compact demo check

setup:
	./tools/setup

compact: setup
	.venv/bin/python tools/build-compact --arch x86_64
	.venv/bin/python tools/build-compact --arch aarch64

demo: compact
	./tools/demo

check: compact
	./tools/run-checks
