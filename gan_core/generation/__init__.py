"""Using a trained run: restoring its sampler, sampling, latent grids and walks, model files in and out."""
