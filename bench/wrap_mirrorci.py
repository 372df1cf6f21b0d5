"""Run the mirrorci CLI in this process and record its own peak RSS.

Usage: python wrap_mirrorci.py RUSAGE_JSON mirrorci-args...

`RUSAGE_SELF.ru_maxrss` is the python process alone (mirrorci itself);
`RUSAGE_CHILDREN.ru_maxrss` is the largest of its git children (with the vfork
floor described in measure.py).
"""

import json
import resource
import sys

from mirrorci.cli import run


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    code = 1
    try:
        code = run(argv)
    finally:
        with open(out, "w") as f:
            json.dump({
                "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                "exit_code": code,
            }, f)
    return code


if __name__ == "__main__":
    sys.exit(main())
