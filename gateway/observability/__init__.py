"""Logs, the audit trail and Prometheus metrics."""
