"""The loop machinery kernels are written in: LLVM types and conversions (types), index
domains and strides (index), counted loops and nests (loops), point-wise loop nests
with vector blocks (pointwise), and the evaluation of a body graph at one point (body)."""
