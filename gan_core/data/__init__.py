"""Data: the bundled and downloaded datasets, checked user uploads, image helpers (no TensorFlow at import)."""
