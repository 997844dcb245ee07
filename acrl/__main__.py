import sys

from acrl.cli import main

sys.exit(main())
