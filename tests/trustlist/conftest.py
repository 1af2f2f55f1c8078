"""Fixtures of the trusted-list tests (defined in tl_helpers so that test modules can import the helpers)."""

from tests.trustlist.tl_helpers import ec_signer, other_signer, pki, rsa_signer, signed_list

__all__ = ["ec_signer", "other_signer", "pki", "rsa_signer", "signed_list"]
