"""Unit tests: the pure parts, the CLI surface, the GitHub client over the GitHub fake."""
