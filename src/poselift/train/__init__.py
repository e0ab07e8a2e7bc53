"""Training: typed config, the trainer loop, checkpoints, evaluation protocols and run reports."""
