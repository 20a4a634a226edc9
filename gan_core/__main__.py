"""`python -m gan_core ...`: the command line."""

import os
import sys

if "--verbose" not in sys.argv:  # hide TensorFlow's C++ chatter; --verbose shows all of it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gan_core.cli import main  # noqa: E402

sys.exit(main())
