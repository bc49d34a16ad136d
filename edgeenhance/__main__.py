from edgeenhance.cli import main

raise SystemExit(main())
