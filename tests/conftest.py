"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import settings

# No test asserts on wall-clock time, and Hypothesis's per-example deadline is one: on the
# 2-core CI machine under load, an example that takes 0.5 ms alone took 336 ms once and
# failed test_note as "flaky". Speed lives in benchmarks/.
settings.register_profile("auditlake", deadline=None)
settings.load_profile("auditlake")
