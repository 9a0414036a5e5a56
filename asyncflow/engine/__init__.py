"""The runtime: scheduler, workers, event bus, and the Engine that wires them."""
