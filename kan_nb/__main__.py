"Run the `kan-nb` command as `python -m kan_nb`."
import sys

from kan_nb.cli import main

sys.exit(main())
