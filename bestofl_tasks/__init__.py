"""bestofl task pack: MGSM and translated GSM8K as lm-eval tasks with parallel docs.

Kept import-light on purpose: the start-up hook imports ``bestofl_tasks._autoload`` at every
interpreter start.
"""

import os

__version__ = "0.1.0"


def task_yamls_dir() -> str:
    """Directory of the task YAMLs (``task_yamls/`` beside the packages)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "task_yamls")
