"""CI glue: GitHub Actions (the container and JavaScript actions) and GitLab CI/CD components.

`entrypoint.py publish|checkout [--gitlab]` reads the `INPUT_*` variables (inputs.py),
runs the same API as the command line (run.py), and writes the step's outputs
(reports.py) where the platform keeps them (platform.py).
"""

from .run import main

__all__ = ["main"]
