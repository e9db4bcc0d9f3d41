"""crossmodal-bias-benchmark: post-hoc, cross-modal bias correction in facial analysis, benchmarked."""

from benchmark.infra import cpu_pin as _cpu_pin

__version__ = "0.1.0"

# Before any torch op of this process or of the processes it starts: torch reads its choice of CPU kernels once, at
# its first op (benchmark/infra/cpu_pin.py).
_cpu_pin.apply()
