"""Durable state: the job contract, tables, queue, quotas ledger and image store."""
