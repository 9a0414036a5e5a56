"""One module per shape; each has `measure(**params) -> dict` run inside a child process."""
