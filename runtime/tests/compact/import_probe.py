"""Entry point of a test build of the compact binary: imports each module named on the
command line and prints one line per module, `ok NAME`, `missing NAME WANTED` (a
ModuleNotFoundError for WANTED) or `error NAME EXCEPTION MESSAGE`. A `module:function`
argument imports the module and calls the function (for modules the runtime loads
through a helper, like pyseccomp)."""

import sys


def main():
    for name in sys.argv[1:]:
        module, _, function = name.partition(":")
        try:
            __import__(module)
            if function:
                getattr(sys.modules[module], function)()
        except ModuleNotFoundError as error:
            print("missing", name, error.name)
        except Exception as error:  # any other failure is reported, not raised
            print("error", name, type(error).__name__, str(error).replace("\n", " "))
        else:
            print("ok", name)
    return 0
