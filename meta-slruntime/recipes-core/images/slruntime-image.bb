SUMMARY = "Minimal read-only image running OCI containers with slruntime"
DESCRIPTION = "Boots to a console with the frozen slr (no Python on the target), the \
               root file system read-only and all mutable state (/run/slr, \
               /var/lib/slr, /tmp, /var/volatile) on tmpfs."
LICENSE = "MIT"

require slruntime-image.inc
