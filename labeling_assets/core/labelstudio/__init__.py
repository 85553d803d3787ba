"""Label Studio as data: labeling configs and results, which items become tasks, the simulated crowd's plan."""
