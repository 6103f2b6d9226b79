"""The Fine-tune page: ``page`` (the settings, and the wiring of the views to them and to the run),
``lanes`` (the freezing plan drawn across the run's steps), ``stages`` (the editor of a staged plan),
``inspector`` (the exact tokens a labelled task builds) and ``live`` (what a run shows while it
trains). The plan is the engine's (``engine.freezing``); the background work is in
``workbench.gui.jobs.finetune``."""
