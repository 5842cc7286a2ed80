"""Compatibility front ends: ``import tracejit.compat.v1 as tf`` for TF1 graph code."""
