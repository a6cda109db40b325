"""Pytest fixtures: database."""
