"""Detection rules, the incremental scheduler and alert sinks (issue #5). Imports `lake` only."""
