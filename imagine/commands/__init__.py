"""One module per ``imagine`` subcommand, each with ``run(args, settings) -> int``."""
