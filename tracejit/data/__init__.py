"""Input data: datasets (and, later, queues and pipelines)."""
