"""Quality: the per-dataset evaluator, the metrics, and whole-run evaluations."""
