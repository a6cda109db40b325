"""imagine: the composition root (command line and settings) of the Discord SDXL service."""
