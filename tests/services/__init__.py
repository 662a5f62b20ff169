"""Real services the tests start for themselves, each on loopback in a temporary folder."""
