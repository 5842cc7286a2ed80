"""Matrix products: the gemm lowering (blas), NumPy's OpenBLAS (openblas), oneDNN's
sgemm (onednn), the register-tiled kernel (tiles, tile_kernel), and the measured choice
among them for this host (choice)."""
