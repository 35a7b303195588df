"""`python -m seamountae`: the command line.

Layer 6, command line: imports layers 1-6 only.
"""

from .cli import main

main()
