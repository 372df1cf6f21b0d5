"""Submodules, each through its own origin's mirrors.

After the superproject is checked out, every submodule registered in .gitmodules at
its gitlink commit is checked out with the same mirror-first checkout (its origin is
asked for its own refs/mirrors/*), then registered the way `git submodule update`
leaves it (.git/modules/<name>, submodule.<name>.url).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkout import CheckoutOptions


def update(opts: CheckoutOptions, superproject: Path, recursive: bool) -> list[dict[str, Any]]:
    """Check out the superproject's submodules; one summary per submodule (nested ones included)."""
    raise NotImplementedError
