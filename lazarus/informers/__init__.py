"""Informers: list/watch reflectors feeding thread-safe caches and event handlers."""
