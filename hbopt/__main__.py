from hbopt.cli import main

raise SystemExit(main())
