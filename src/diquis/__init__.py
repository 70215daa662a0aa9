"""Diquis: durable background jobs and real-time notifications for Python web apps."""

__version__ = "0.1.0"
