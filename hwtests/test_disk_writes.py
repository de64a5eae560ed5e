"""No write reaches the boot medium while containers run: counted by the
guest's block layer (/proc/diskstats) and, on QEMU, by the emulated disk
itself (QMP query-blockstats), around a workload of many container runs
that write and sync their own and the system's tmpfs."""
import os

RUNS = int(os.environ.get("HWTESTS_DISK_RUNS", "500"))
# Seconds per container run allowed before the workload counts as hung (TCG is slow).
SECONDS_PER_RUN = 6


def boot_disk(guest):
    """Kernel name of the whole disk holding / (vda, mmcblk0, sda...)."""
    majmin = next(line.split()[2] for line in guest.run("cat /proc/self/mountinfo")
                  if line.split()[4] == "/")
    device = guest.text(f"readlink -f /sys/dev/block/{majmin}")
    if guest.exists(f"{device}/partition"):
        device = os.path.dirname(device)
    return os.path.basename(device)


def guest_writes(guest, disk):
    """(writes completed, sectors written) of disk from /proc/diskstats."""
    for line in guest.run("cat /proc/diskstats"):
        fields = line.split()
        if fields[2] == disk:
            return int(fields[7]), int(fields[9])
    raise AssertionError(f"{disk} not in /proc/diskstats")


def qmp_writes(qemu):
    """{device: (write operations, bytes written)} as QEMU counted them."""
    return {dev["device"] or dev.get("qdev", "?"):
            (dev["stats"]["wr_operations"], dev["stats"]["wr_bytes"])
            for dev in qemu.monitor_command("query-blockstats")}


def test_no_boot_disk_writes_during_container_runs(guest, slr, qemu, record_property):
    disk = boot_disk(guest)
    bundle = guest.make_bundle("disk-writes", ["sh", "-c", "echo $$ > /tmp/state && sync"])
    guest.run("sync")
    before_guest = guest_writes(guest, disk)
    before_qmp = qmp_writes(qemu) if qemu else None

    out = guest.run(
        f"i=0; while [ $i -lt {RUNS} ]; do"
        f" {slr} run -b {bundle} hw-disk-$i >/dev/null 2>&1 || break;"
        f" echo run $i >> /var/log/hwtests-disk.log; i=$((i+1)); done;"
        f" sync; echo ran=$i", timeout=60 + RUNS * SECONDS_PER_RUN)
    ran = int(out[-1].split("=")[1])
    assert ran == RUNS, f"the workload stopped after {ran} of {RUNS} runs"

    after_guest = guest_writes(guest, disk)
    record_property("diskstats_before_after", (before_guest, after_guest))
    assert after_guest == before_guest, f"{disk}: (writes, sectors) {before_guest} -> {after_guest}"
    if qemu:
        after_qmp = qmp_writes(qemu)
        record_property("qmp_blockstats_before_after", (before_qmp, after_qmp))
        assert after_qmp == before_qmp, f"QEMU counted writes: {before_qmp} -> {after_qmp}"
