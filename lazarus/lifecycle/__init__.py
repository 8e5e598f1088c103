"""The restore-test lifecycle: the pure pieces the restore-test controller is built from."""
