"""Pytest fixtures: fake_discord."""
