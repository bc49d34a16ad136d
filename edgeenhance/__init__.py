"""edgeenhance: small photo enhancers, exported to int8 phone models and checked against float."""

__version__ = "0.1.0"
