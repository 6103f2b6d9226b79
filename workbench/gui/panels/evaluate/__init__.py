"""The Evaluate page (in-context learning): ``page`` (the page: model, evaluation settings, jobs,
the prompt of one example), ``task_form`` (the Task card), ``plot`` (accuracy against k, the
attention bars), ``prompt_view`` (the coloured prompt and its candidates) and ``reference`` (the
fine-tuned line). Its background work is in ``workbench.gui.jobs.evaluate``; the task is built by
``workbench.engine.icl_task``."""
