"""One module per CLI command: flags -> config dataclasses -> one library call."""
