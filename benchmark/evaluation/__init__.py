"""Analyses of a predictions table beside the statistics: the predicted-attribute audit, confusion counts, contrasts, the DVC headline and the training data's bias profile."""
