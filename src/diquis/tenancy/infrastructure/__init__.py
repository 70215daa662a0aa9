"""Adapters from the application's ports to SQL, the job engine, the hub and SMTP."""
