"""Shared kernel: settings, storage, auth, errors, jobs, clock."""
