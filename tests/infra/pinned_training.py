"""A small CPU training run for tests/test_cpu_pin.py, run as its own process (torch reads its choice of kernels once
per process): ``python tests/pinned_training.py [--torch-first]`` prints one JSON line, the sha256 of the trained
weights, torch's CPU capability and oneMKL's reproducibility branch in this process.

``--torch-first`` runs torch ops (an elementwise op, a batched product) before importing ``benchmark``, as a script
that used torch before the pin would. The training data come from integer draws (exact in float32 on every machine),
three ragged models of the paper network with dropout, on two processes (a fork-server worker and this one).
"""

from __future__ import annotations

import hashlib
import json
import sys


def main(torch_first: bool) -> None:
    if torch_first:
        import torch

        torch.softmax(torch.arange(4.0), dim=0)
        torch.bmm(torch.ones(2, 24, 32), torch.ones(2, 32, 11))
    import numpy as np
    import torch

    from benchmark.core.settings import CorrectorSettings
    from benchmark.infra import cpu_pin
    from benchmark.methods.network import Architecture, TrainingData
    from benchmark.methods.trainer import train_many

    rng = np.random.default_rng(7)
    data = [TrainingData(rng.integers(-48, 48, size=(n, 10)).astype(np.float32) / 16,
                         rng.integers(0, 2, size=n), rng.integers(0, 8, size=n)) for n in (100, 70, 45)]
    weights = train_many(data, [0, 1, 2], arch=Architecture(8, 2, 24, n_attribute_inputs=2, n_groups=2),
                         settings=CorrectorSettings(epochs=3), workers=2)
    digest = hashlib.sha256()
    for model in weights:
        for w, b in model.layers:
            digest.update(np.ascontiguousarray(w).tobytes())
            digest.update(np.ascontiguousarray(b).tobytes())
    print(json.dumps({"weights": digest.hexdigest(), "capability": torch.backends.cpu.get_cpu_capability(),
                      "mkl_branch": cpu_pin._mkl_branch()}))


if __name__ == "__main__":
    main("--torch-first" in sys.argv[1:])
