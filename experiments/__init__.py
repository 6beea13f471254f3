"""Experiments that run the whole pipeline (not part of the installed package)."""
