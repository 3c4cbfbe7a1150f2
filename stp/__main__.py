from stp.cli import main

raise SystemExit(main())
