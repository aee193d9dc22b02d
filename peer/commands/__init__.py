"""One module per ``setpeer`` subcommand: ``add_parser(subparsers, name)`` sets ``handler``."""
