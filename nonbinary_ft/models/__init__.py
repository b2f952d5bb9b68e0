"""Model surgery: the layer map, loading pre-trained weights, re-initialising top layers."""
