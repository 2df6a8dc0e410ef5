"""I/O to the venues: the connection supervisor, instrument fetching, recording."""
