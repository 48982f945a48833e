"""Getting events into the lake: file/stdin ingestors and the demo traffic generator.

The SDK client and HTTP collector land here too (issue #3). Imports `lake` only.
"""
