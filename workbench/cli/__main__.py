from workbench.cli import main  # python -m workbench.cli, as python -m workbench

raise SystemExit(main())
