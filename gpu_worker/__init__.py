"""The GPU worker: the diffusers SDXL engine and the job run loop."""
