"""LanceDB feature store: tables, stage cache and training readers."""
