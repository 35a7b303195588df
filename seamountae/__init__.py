"""seamountae: seamount detection on bathymetry grids with a one-class convolutional autoencoder.

Layer 1, foundations: imports layer 1 only.
"""

__version__ = "0.1.0"
