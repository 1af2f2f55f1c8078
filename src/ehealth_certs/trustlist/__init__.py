"""Trusted lists (ETSI TS 119 612): publish (build + sign) and consume (verify + update a truststore).

``publish.build_trusted_list`` → ``pki.issuer.sign_trusted_list`` → serve the bytes and ``sha2_digest_file``;
``consume.verify_trusted_list`` / ``consume.update_truststore`` on the relying-party side.
"""
