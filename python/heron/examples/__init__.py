"""Runnable examples: python -m heron.examples.mnist."""
