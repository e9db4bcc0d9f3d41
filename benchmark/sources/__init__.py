"""Sources of the outputs table: ``sim`` (simulated, offline), ``published`` (the authors' CSVs), ``images``."""
