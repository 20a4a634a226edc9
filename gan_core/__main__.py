"""`python -m gan_core ...`: the command line."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's C++ start-up chatter

from gan_core.cli import main  # noqa: E402

sys.exit(main())
