"""The control plane: REST API, state store, scheduler and reconciler."""
