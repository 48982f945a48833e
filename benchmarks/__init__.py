"""Reproducible benchmarks that compare auditlake against a baseline measured in the same run."""
