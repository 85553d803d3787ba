"""Running things on this machine for development, tests and the demo: a local Label Studio server and the simulated crowd that labels in it."""
