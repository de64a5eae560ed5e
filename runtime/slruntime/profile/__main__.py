"""python -m slruntime.profile ...: the same as `slr profile ...`."""

import sys

from slruntime.profile.cli import main

sys.exit(main())
