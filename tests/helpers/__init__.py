"""Helpers shared by the test tiers: synthetic runs, tiny models, fake runs,
isolated-interpreter checks, batch inputs and the comparison notebook."""
