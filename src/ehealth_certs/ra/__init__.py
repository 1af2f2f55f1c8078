"""CertRA: contracts, requests, approval, the issuance cycle, renewal, revocation, CRL and OCSP."""
