"""Tests of the image fetch guard and the banned-words matcher."""
