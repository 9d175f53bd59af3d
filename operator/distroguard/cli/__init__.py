"""Command-line entry points (`distroguard ...`)."""
