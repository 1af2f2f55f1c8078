"""Entry point of the ``ehcerts`` console script."""

from __future__ import annotations

import typer

from ehealth_certs.cli import client, etee, operators, registry, server, trustlist

app = typer.Typer(
    name="ehcerts",
    help="ehealth-certs: eHealth certificates, encryption keys (ETK) and trust for healthcare actors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
client.register(app)
etee.register(app)
trustlist.register(app)
registry.register(app)
operators.register(app)


def main() -> None:
    app()
