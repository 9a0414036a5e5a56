"""asyncflow's benchmark suite: `python -m benchmarks` (see README.md).

The parent process (`suite.py`) plans the cases, runs every repetition of every case in a fresh
child process (`child.py`) with a fresh on-disk SQLite database, and reports medians with min-max.
Each shape is one small module in `shapes/` whose `measure()` runs inside the child.
"""
