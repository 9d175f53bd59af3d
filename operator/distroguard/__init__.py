"""distroguard: know, and control, what your cluster's images are built on."""

__version__ = "0.1.0"
