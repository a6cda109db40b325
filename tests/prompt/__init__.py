"""Tests of the prompt language, ``imagine parse`` and the sampling mapping."""
