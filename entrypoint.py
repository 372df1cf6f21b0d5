#!/usr/bin/env python3
"""Entry point of the mirrorci container image (GitHub Actions, GitLab CI/CD, `docker run`).

    entrypoint.py publish|checkout [--gitlab] [--dotenv FILE]   the action / component: INPUT_* variables
    entrypoint.py inspect URL | checkout URL ... | --version     the mirrorci command line
    entrypoint.py sh -c '...' | git --version | bash            any other command runs as given

See mirrorci/launch.py for the rules, mirrorci/ci/ for the CI mode.
"""

import sys

from mirrorci.launch import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
