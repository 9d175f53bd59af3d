"""Bytes → facts: layer decompression, the tar stream, the overlay, and the detectors. Pure: no I/O."""
