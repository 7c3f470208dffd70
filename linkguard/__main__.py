from linkguard.cli import main

raise SystemExit(main())
