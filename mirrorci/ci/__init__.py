"""CI glue for the container image: GitHub Actions and GitLab CI/CD components.

`entrypoint.py publish|checkout [--gitlab]` reads the `INPUT_*` variables, runs
the same API as the command line, and writes step outputs (see run.py).
"""

from .run import main

__all__ = ["main"]
