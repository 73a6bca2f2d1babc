"""Test support shared by every service's tests, the end-to-end suite and the benchmarks:
builders of imports and events, one in-memory Redis, `wait_until`, and a process starter.

Fakes here are for unit and component tests only; end-to-end tests use the real stack.
"""
