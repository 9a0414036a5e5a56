"""The daemon side of asyncflow: config, logging, systemd integration, the database lock."""
