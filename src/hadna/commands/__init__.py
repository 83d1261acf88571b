"""CLI subcommands; see :mod:`hadna.cli`."""
