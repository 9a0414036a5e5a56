"""DAG loading: finding DAG files, importing each in isolation, reloading what changed.

The layer between what users write (`models/`) and what runs it (`engine/`): it imports models,
the engine imports it, and it imports neither the engine nor the service.
"""
