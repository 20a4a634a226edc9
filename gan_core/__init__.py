"""GAN Workbench engine: configuration, data, models, training and the run store."""

__version__ = "0.1.0"
