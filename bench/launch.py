"""Start a command, wait for it, and record its wall time and the peak RSS of its tree.

Usage: python launch.py RESULT_JSON command args...

The benchmark starts every measured command through this small process. A child
inherits its parent's RSS at spawn as a floor for `ru_maxrss` (vfork/exec), so
measuring from here, not from the benchmark process (which may hold hundreds of
MB after generating a repository), keeps the floor at this launcher's few MB.
"""

import json
import os
import sys
import time


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    started = time.monotonic()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "exit_code": code, "pid": pid}, f)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
