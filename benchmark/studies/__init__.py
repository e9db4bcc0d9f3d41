"""Simulation studies of the statistics: interval coverage and the minimum detectable effects."""
