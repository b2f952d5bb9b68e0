"""Analysis: how well the pre-trained weights fit the target."""
