"""Credential material shared by the gateway and the control plane: SCRAM verifiers, TLS."""
