"""Writes of evidence. Each runs on the evidence connection and commits on its own."""
