"""Where state is kept: the contract (`base.Store`) and its backends."""
