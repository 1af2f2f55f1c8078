"""ehealth-certs: a national eHealth certificate platform modelled on the Belgian eHealth platform."""

__version__ = "0.1.0"
