"""A module whose import fails, to test the error message for dotted paths."""

import this_module_does_not_exist  # noqa: F401
