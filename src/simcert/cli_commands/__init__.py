"""The bodies of the `simcert` commands: `simcert.cli` parses the options and calls `_<command>_body` here."""
