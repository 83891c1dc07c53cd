"""Use cases: accounts, zones, hosts and groups, apply_change, update rules, the journal follower."""
