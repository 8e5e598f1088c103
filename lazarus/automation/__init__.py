"""Automatic restore tests: the pure rules behind the backup-trigger and policy controllers.

- ``names``: deterministic, length-bounded names of the tests Lazarus creates by itself.
- ``optin``: the labels and annotations by which Velero Schedules and Backups opt in.
- ``backups``: facts about Velero Backups, which of them a Schedule's opt-in tests, which one a
  policy run picks.
- ``cron``: a policy's cron schedule in its time zone, and which run is due.
- ``template``: the test a policy (or the default) makes of a backup, validated before use.

Nothing here talks to the API server except ``template.create_test``; the controllers in
``lazarus/controllers/backuptrigger.py`` and ``lazarus/controllers/policy.py`` do the rest.
"""
