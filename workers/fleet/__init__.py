"""The fleet agent: the supervisor of one host's tenant workers (PM2's job)."""
