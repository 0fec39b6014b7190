"""The python suites are packages (tests.<suite>), so one pytest run can
collect them all: each suite's conftest.py and helper modules get a name
of their own instead of all being a top-level `conftest`."""
