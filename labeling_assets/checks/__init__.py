"""Asset checks, one module per stage."""
