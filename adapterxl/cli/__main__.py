"""`python -m adapterxl.cli` (what `accelerate launch -m` and `torchrun -m` run)."""
from . import main

main()
