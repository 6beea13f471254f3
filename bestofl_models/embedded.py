"""Moved to bestofl_models.generation.embedded; kept for one release (``python -m bestofl_models.embedded`` runs it)."""

import sys

from .generation import embedded as _embedded

if __name__ == "__main__":
    raise SystemExit(_embedded.main())
sys.modules[__name__] = _embedded  # the old path is the module itself, so patching through it reaches the code
