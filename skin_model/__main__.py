from skin_model.cli import main

raise SystemExit(main())
