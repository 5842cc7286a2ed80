"""The host side of the CPU backend: a whole graph becomes one LLVM module with one native
entry (program, entry, binding), compiled for a target (machine, target, cpu_features,
compile_worker), cached in memory and on disk (cache, cache_budget), with the decisions
measured on this host remembered (tuning, vector_choice); executor.py ties them up."""
