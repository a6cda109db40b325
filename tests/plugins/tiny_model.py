"""Pytest fixtures: tiny_model."""
