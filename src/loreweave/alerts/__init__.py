"""Alerts for critical failures: conditions, their cluster-wide state, where they are sent."""
