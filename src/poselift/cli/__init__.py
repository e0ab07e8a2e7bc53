"""Command-line interface: ``poselift <subcommand>``, one module per subcommand."""
