"""Training: one fine-tuning run (a trial), independent of Ray."""
