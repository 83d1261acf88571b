"""Compatibility entry point: the teacher lives in the :mod:`hadna.teachers` package."""

from hadna.teachers import *  # noqa: F401,F403 - re-export
from hadna.teachers import __all__  # noqa: F401
