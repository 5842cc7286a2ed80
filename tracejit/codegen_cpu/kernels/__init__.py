"""One equation of a fused graph as a loop nest: the table that picks a rule per op
(table), elementwise rows and bodies (elementwise_ops, elementwise), reductions,
movement ops, convolutions and pooling (reduce, movement, conv, pool, nhwc)."""
