"""How the suites start the programs under test: sanitizers set to report
(not abort) so that the test reads the report from stderr, and children
that go when the test run goes."""

import ctypes
import os
import signal


def sanitizer_env():
    """os.environ plus the sanitizer options the caller has not set."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.setdefault("TSAN_OPTIONS", "second_deadlock_stack=1")
    return env


def die_with_parent():
    """Popen preexec_fn: if pytest itself dies, the child gets SIGTERM
    instead of lingering."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
