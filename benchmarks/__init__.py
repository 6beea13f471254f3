"""Benchmarks for bestofl: ``python benchmarks/run_all.py [--quick]`` (see run_all.py)."""
