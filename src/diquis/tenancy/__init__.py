"""The reference application: tenants provisioned by background jobs, with live feedback."""
