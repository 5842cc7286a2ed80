"""The CUDA backend: fused graphs -> numba.cuda kernels (PTX) and cuBLAS, ``/gpu:N``.

Its parts (docs/cuda_backend.md):

* ``mode.py`` -- which CUDA this process has (GPU, simulator, compile-only, none);
* ``point.py``, ``elementwise_ops.py``, ``device_functions.py``, ``scalars.py`` -- a
  body evaluated at a point, as Python source for numba.cuda;
* ``kernels/`` -- one generator per loop nest (elementwise, reduction, matmul,
  movement, convolution and pooling);
* ``table.py`` -- the lowering table, op -> rule -> steps (``steps.py``);
* ``compiler.py`` -- kernels to launchable functions and PTX; ``program.py`` -- a graph
  as steps on a stream; ``memory.py`` -- the caching allocator; ``cublas.py``;
* ``device.py`` -- the runtime Device; ``pipeline.py`` its passes.

Importing the package loads neither numba nor the CUDA driver.
"""
