"""Pure values and rules; imports nothing else of homing."""
