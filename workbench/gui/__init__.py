"""Everything a person sees: the Qt side of the workbench (imports the engine, never the reverse)."""
