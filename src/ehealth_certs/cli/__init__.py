"""The ``ehcerts`` command line: server and operator commands, and the Certificate Manager."""
