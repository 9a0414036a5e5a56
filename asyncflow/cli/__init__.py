"""The `asyncflow` command line: `asyncflow.cli.main:main`."""
