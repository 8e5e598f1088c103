"""Controllers: each reconciles one kind of object from the informer cache, idempotently."""
