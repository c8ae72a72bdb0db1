"""The version of hlg, importable by any module without importing the package's front door."""

__version__ = "0.1.0"
