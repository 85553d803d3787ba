"""Ingest: scanning an image source, decode-verifying, content-hashing; the bundled demo images."""
