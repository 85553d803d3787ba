"""Extra answer fields (class + severity, quality flags, the labeler's own confidence): settings, Label Studio controls,
per-item consensus, the simulated crowd's answers and the self-rating's calibration."""
