"""Use cases: accounts, zones, hosts, groups, apply_change, update rules, journal follower."""
