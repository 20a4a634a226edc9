"""The run store and the job queue: folders on disk and worker processes (no TensorFlow)."""
