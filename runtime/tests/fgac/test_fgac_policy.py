"""Policy semantics: which blocks select a container and what a rule allows."""

from slruntime import libc
from slruntime.fgac import policy

TEXT = """
container id=cam-*
  mount fstype=tmpfs source=tmpfs target=/mnt/scratch flags=nosuid,nodev,noexec require=nosuid,nodev data=size=*,mode=1777
  mknod path=/dev/ttyUSB* type=c dev=188:* mode=0660
container annotation=org.example.role=sensor uid=1000
  mount fstype=ext4 source=/dev/mmcblk0p3 target=/mnt/storage flags=noatime data=*
container bundle=/srv/*/cam metadata=MKNOD=*
  mount fstype=bind source=/data target=/mnt/data flags=rec,ro
  umount target=/mnt flags=detach
"""
POLICY = policy.parse(TEXT, "p")
NOSUID_NODEV = libc.MS_NOSUID | libc.MS_NODEV


def rules(container_id="x", bundle="/b", annotations=None, metadata=None, uid=0):
    return POLICY.rules_for({"id": container_id, "bundle": bundle, "annotations": annotations or {}}, metadata, uid)


def allows(rules_, *request):
    return rules_.first_allowing(*request)[0] is not None


def test_blocks_select_by_id_annotation_bundle_metadata_and_peer_uid():
    assert rules("stranger") is None
    assert rules("cam-1").blocks == ["p:2"]
    assert rules(annotations={"org.example.role": "sensor"}) is None  # uid=1000 required too
    assert rules(annotations={"org.example.role": "sensor"}, uid=1000).blocks == ["p:5"]
    assert rules(bundle="/srv/a/cam") is None  # metadata required too
    assert rules(bundle="/srv/a/cam", metadata="MKNOD=/dev/null").blocks == ["p:7"]
    union = rules("cam-2", "/srv/a/cam", {"org.example.role": "sensor"}, "MKNOD=", 1000)
    assert union.blocks == ["p:2", "p:5", "p:7"] and len(union.mounts) == 3


def test_mount_rule_checks_every_field():
    r = rules("cam-1")
    ok = dict(source="tmpfs", target="/mnt/scratch/a", fstype="tmpfs", flags=NOSUID_NODEV, data="size=1m,mode=1777")

    def mount(**changes):
        return allows(r, r.mounts, policy.MountRequest(**dict(ok, **changes)))

    assert mount()
    assert mount(target="/mnt/scratch", flags=NOSUID_NODEV | libc.MS_NOEXEC, data="")
    assert not mount(target="/mnt/scratchpad")
    assert not mount(fstype="ramfs")
    assert not mount(source="/dev/sda1")
    assert not mount(flags=libc.MS_NOSUID)  # nodev required
    assert not mount(flags=NOSUID_NODEV | libc.MS_RDONLY)
    assert not mount(data="size=1m,uid=0")
    assert not mount(flags=NOSUID_NODEV | libc.MS_BIND)


def test_bind_rule_matches_the_resolved_source_below_its_prefix():
    r = rules(bundle="/srv/a/cam", metadata="MKNOD=")
    bind = libc.MS_BIND | libc.MS_REC
    assert allows(r, r.mounts, policy.MountRequest("/data/x", "/mnt/data", None, bind, None))
    assert not allows(r, r.mounts, policy.MountRequest("/database", "/mnt/data", None, bind, None))
    assert not allows(r, r.mounts, policy.MountRequest("/data", "/mnt/data", "tmpfs", 0, None))


def test_mknod_rule_checks_path_type_device_and_mode():
    r = rules("cam-1")
    chr_ = policy.S_IFCHR
    assert allows(r, r.mknods, "/dev/ttyUSB0", chr_ | 0o660, 188, 0)
    assert allows(r, r.mknods, "/dev/ttyUSB1", chr_ | 0o600, 188, 1)
    assert not allows(r, r.mknods, "/dev/ttyACM0", chr_ | 0o660, 188, 0)
    assert not allows(r, r.mknods, "/dev/ttyUSB0", chr_ | 0o666, 188, 0)
    assert not allows(r, r.mknods, "/dev/ttyUSB0", policy.S_IFBLK | 0o660, 188, 0)
    assert not allows(r, r.mknods, "/dev/ttyUSB0", chr_ | 0o660, 189, 0)


def test_umount_rule_checks_target_and_flags():
    r = rules(bundle="/srv/a/cam", metadata="MKNOD=")
    assert allows(r, r.umounts, "/mnt/data", libc.MNT_DETACH)
    assert not allows(r, r.umounts, "/", 0)
    assert not allows(r, r.umounts, "/mnt/data", 1)  # MNT_FORCE


def test_mount_flags_normalised_and_named():
    assert policy.normalise_mount_flags(0xC0ED0000 | libc.MS_SILENT | libc.MS_NOSUID) == libc.MS_NOSUID
    assert policy.flag_names(libc.MS_RDONLY | libc.MS_BIND | 0x10000000, policy.MOUNT_FLAGS) == ["ro", "bind", "0x10000000"]
