"""One module per `python -m studio` subcommand (see studio/cli.py for the contract)."""
