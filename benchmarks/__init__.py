"""`make bench`: answer latency, retrieval at scale, ingestion throughput, memory and concurrent load.

Run `python benchmarks/bench.py --help`. Numbers, not asserts: the targets are reported, never enforced.
"""
