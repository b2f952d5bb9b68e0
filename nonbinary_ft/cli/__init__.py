"""The nbft command line."""
