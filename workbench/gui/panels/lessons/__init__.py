"""The Lessons page: ``page`` (the list, the claim, Run and Stop, the job), ``live`` (every run's
curve as it trains, marks), ``results`` (the strip chart of per-seed values, the effect and the
verdict). The lessons themselves are ``workbench.lessons``; the job that runs one is
``workbench.gui.jobs.lessons``."""
