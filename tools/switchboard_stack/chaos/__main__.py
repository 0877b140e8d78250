"""`python -m switchboard_stack.chaos` (`make chaos`): see `switchboard_stack.chaos.run`."""

import sys

from switchboard_stack.chaos.run import main

sys.exit(main())
