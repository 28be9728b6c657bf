"""The X.509 chain of trust: foundation root, manufacturer roots, device certificates, CRLs."""
