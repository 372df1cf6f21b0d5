#!/usr/bin/env python3
"""Entry point of the mirrorci container image (GitHub Actions and GitLab CI/CD).

    entrypoint.py publish|checkout [--gitlab] [--dotenv FILE]

Inputs come from `INPUT_<NAME>` environment variables; see mirrorci/ci/.
"""

import sys

from mirrorci.ci import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
