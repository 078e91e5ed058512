"""The demo: seed data, a simulated carrier and simulated agents, so a newcomer sees real calls."""
