"""The demo retailer simulator (issue 3): being built."""
