"""Allow ``python -m lazarus``."""

from lazarus.cli import main

raise SystemExit(main())
