"""Correction methods: each turns frozen-model outputs into gender and emotion probabilities.

A method fits on training rows (or does not train at all) and predicts for evaluation rows. All methods share one
interface (:class:`~benchmark.methods.method.Method`) and one registry (:data:`~benchmark.methods.method_registry.METHODS`),
so the run matrix treats them alike.
"""
