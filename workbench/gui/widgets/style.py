"""Moved to workbench/gui/theme.py; this stand-in lasts until the commit that renames the imports."""
from ..theme import *  # noqa: F401,F403
from ..theme import HIGHLIGHT as ACCENT  # noqa: F401
