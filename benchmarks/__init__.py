"""Exporthub's benchmarks: ``python -m benchmarks`` runs the harness (see :mod:`benchmarks.harness`)."""
