"""Peer implementations (other projects' engines running the same rule) that the cross-check
tests compare against and the benchmarks time; each module needs its peer installed."""
