"""``python -m diffusion_lab`` (see ``cli``)."""

import sys

from .cli import main

sys.exit(main())
