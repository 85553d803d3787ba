"""``python -m labeling_assets.core.training``: train from a tensor cache on a machine with only torch."""

from labeling_assets.core.training.cli import main

raise SystemExit(main())
