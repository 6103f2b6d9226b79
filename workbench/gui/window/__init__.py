"""The main window, one job per module: main_window.py (MainWindow: the pages, toolbar, menus,
status bar and the run's events), sidebar.py, page_host.py, redraw.py, geometry.py,
experiment_state.py, experiment_io.py, icons.py."""
