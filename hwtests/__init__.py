"""Hardware-in-the-loop tests of slruntime: the QEMU CI image, labgrid targets and tests."""
