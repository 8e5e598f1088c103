"""Lazarus's API types: the typed model of its custom resources, by API version."""
