"""python -m habla_gateway"""

from __future__ import annotations

from .main import main

main()
