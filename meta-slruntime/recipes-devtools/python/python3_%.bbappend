# The static libpython that slruntime-compact links, only with the "slruntime" distro
# feature: adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'python3-slruntime.inc', '', d)}
