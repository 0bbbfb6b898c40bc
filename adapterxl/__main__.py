"""`python -m adapterxl`: the `adapterxl` command."""
from .cli import main

main()
