"""``python -m bullpy.cli``: the same as the ``bullpy`` command."""

from . import main

main()
