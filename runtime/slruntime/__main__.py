import sys

from slruntime.cli import main

sys.exit(main())
