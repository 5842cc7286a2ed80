"""The GPU's kernel generators, one module per kind of loop nest (docs/cuda_backend.md)."""
