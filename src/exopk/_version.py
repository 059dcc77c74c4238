"""The package version, in one place (imported by the package, the SBML writer and the docs)."""

__version__ = "0.1.0"
