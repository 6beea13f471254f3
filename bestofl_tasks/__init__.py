"""bestofl task pack: MGSM and translated GSM8K as lm-eval tasks with parallel docs.

Kept import-light on purpose: the start-up hook imports ``bestofl_tasks._autoload`` at every
interpreter start.
"""

__version__ = "0.1.0"
