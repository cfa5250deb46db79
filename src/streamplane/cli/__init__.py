"""The ``streamplane`` command line."""
