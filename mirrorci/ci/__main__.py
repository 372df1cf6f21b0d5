"""`python3 -m mirrorci.ci publish|checkout`: the CI entry without an installed package.

The checkout action's launcher (checkout/dist/main.js) runs this with the action's
own directory on PYTHONPATH, so the step needs only the runner's python3 and git.
"""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
