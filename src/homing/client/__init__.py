"""The update client that runs on users' devices; imports only homing.domain of homing."""
