"""seamountae: seamount detection on bathymetry grids with a one-class convolutional autoencoder."""

__version__ = "0.1.0"
