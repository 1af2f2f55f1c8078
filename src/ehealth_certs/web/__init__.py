"""HTTP edges: REST API, SOAP adapters, PKI publication (CA certificates, CRL, OCSP), health and metrics."""
