"""Online DNSSEC: keys in the store, signatures and the NSEC3 chain written with each change."""
