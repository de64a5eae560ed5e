# Warns when meta-slruntime is in BBLAYERS but the distro does not enable the
# "slruntime" distro feature: the layer's bbappends then change nothing, and the
# slruntime images are skipped.  An event handler only: no task signature changes.
SLRUNTIME_SKIP_SANITY_WARNING ??= "0"

addhandler slruntime_bbappend_distrocheck
slruntime_bbappend_distrocheck[eventmask] = "bb.event.SanityCheck"
slruntime_bbappend_distrocheck[doc] = "Warns when the slruntime distro feature is missing"
python slruntime_bbappend_distrocheck() {
    skip = d.getVar("SLRUNTIME_SKIP_SANITY_WARNING") == "1"
    if not skip and not bb.utils.contains("DISTRO_FEATURES", "slruntime", True, False, d):
        bb.warn("meta-slruntime is in BBLAYERS without the 'slruntime' DISTRO_FEATURE: "
                "its image recipes are skipped and its bbappends change nothing. "
                "Use DISTRO = \"slr\" or require conf/distro/include/slruntime.inc. "
                "Set SLRUNTIME_SKIP_SANITY_WARNING = \"1\" to silence this warning.")
}
