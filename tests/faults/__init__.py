"""Fault injection: kill -9, servers stopped mid-call, cut connections, concurrent runs; after recovery the store
equals Label Studio and nothing retracted reaches an export."""
