"""Best-of-L for lm-eval: the harness models, their candidate store and the reports.

One package per stage of the pipeline (docs/ARCHITECTURE.md); a package imports only the ones above it here:

* ``store``: the SQLite candidate store, model identity, atomic writes, bestofl's cache folder;
* ``selection``: selection methods, how ``n`` is spread over a pool, adaptive stopping rules;
* ``generation``: generator backends, data parallel glue, the embedded model, translation;
* ``verifiers``: trained verifiers, chat reward models, judges, their config and how ``verifier=`` resolves;
* ``harness``: the lm-eval ``LM`` classes, ``--model_args``, and the stages ``generate_until`` runs;
* ``report``: ``bestofl-report`` (reads stores and lm-eval outputs only).

``errors`` (the user-facing error types) sits below them all; ``testing`` (tiny deterministic models for tests,
benchmarks and examples) above. Module paths from before this layout still import (``_moved``, one release).
"""

from . import _moved

_moved.install()
