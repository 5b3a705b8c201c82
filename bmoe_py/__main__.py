import sys

from bmoe_py.cli.main import main

sys.exit(main())
