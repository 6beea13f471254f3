"""The errors a user fixes by changing an option: every stage may raise them, so they sit below all stages.

The ``lm_eval`` CLI prints them as one line (the start-up hook, ``bestofl_tasks._autoload``), without a traceback.
"""

from __future__ import annotations


class ModelArgsError(ValueError):
    """A ``--model_args`` value that cannot work; the message says what to write instead. The ``lm_eval`` CLI
    prints it as one line (the start-up hook), without a traceback."""


class LmEvalOptionError(ValueError):
    """An lm-eval option (``--use_cache``, a ``--system_instruction`` map missing a pool language, ...) that our
    models cannot honour truthfully; the message says why and what to use instead. The ``lm_eval`` CLI prints it
    as one line (the start-up hook), without a traceback."""
