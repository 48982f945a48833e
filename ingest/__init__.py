"""Getting events into the lake. Imports `lake` only, and nothing at package import time.

By job:

- files and stdin: `files` (read, validate, spool, duplicates), `formats` (telling formats
  apart; CSV and Parquet as wire events), `fingerprints` (duplicate ids in bounded memory)
- the HTTP collector: `collector_app` (routes, statuses, `serve`) over an `acceptor.Acceptor`,
  which is `collector.Collector` (WAL + batcher + `quarantine`) or `forwarder`
  (JetStream); `request_body`, `bounded_body`, `connections`, `tokens`, `metrics` serve it
- the write-ahead log: `wal` (the log), `wal_records` (its bytes on disk)
- streaming: `broker` (what a broker offers), `decode` (messages as events), `source`
  (the `auditlake consume` loop), `jetstream` (NATS JetStream)
- `sdk/`: the client services send events with (standard library only)
- `demo/`: deterministic demo traffic with planted attacks
- shared: `durable` (atomic, fsync'd file writes), `batching` (batch sizes, backoff),
  `ipc` (Arrow IPC), `jsonlog` (the JSON log), `closing`
- `witness_server`: the HTTP witness that cosigns checkpoints
"""
