"""Placeholder: filled in by the op-table work."""
