"""Model families beyond SDXL: each knows how to build its pipelines and render a grid."""
