"""Lazarus: a Kubernetes operator that proves Velero backups can be restored."""

__version__ = "0.1.0.dev0"
