"""Training: the loop around a family's step, devices and precision, the terminal progress bar."""
