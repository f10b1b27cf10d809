import sys

from cchmi.cli import main

sys.exit(main())
