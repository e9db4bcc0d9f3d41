"""crossmodal-bias-benchmark: post-hoc, cross-modal bias correction in facial analysis, benchmarked."""

__version__ = "0.1.0"
