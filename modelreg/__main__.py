import sys

from modelreg.cli.main import main

sys.exit(main())
