"""``python -m ehealth_certs`` is the ``ehcerts`` command."""

from ehealth_certs.cli.main import main

main()
