"""Threads for kernels: the settings (settings), tracejit's own thread pool in generated
code (pool), OpenBLAS's threaded jobs on it (gang), and the parallel-for kernels emit
(parallel_for)."""
