import sys

from slruntime.fgac.cli import main

sys.exit(main(sys.argv[1:], prog="python -m slruntime.fgac"))
