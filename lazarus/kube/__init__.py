"""Thin access to the Kubernetes API: one explicit ApiClient and plain-dict REST calls."""
