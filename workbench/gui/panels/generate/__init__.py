"""The Generate page: ``page`` (the page: model source, prompt and sampling, the streamed output
at a pace) and ``attention`` (what the chosen generated token looked at). Its background work is
in ``workbench.gui.jobs.generate`` and ``workbench.gui.jobs.models``."""
