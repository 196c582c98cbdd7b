"""Data, models and fixtures' bodies that tests in several folders share (one copy each).

``tests/`` is on ``sys.path`` (its ``conftest.py`` puts it there), so any test imports these as
``from testkit.<module> import ...``. A fixture stays in its test module or conftest as a line or two
that calls the helper here.
"""
