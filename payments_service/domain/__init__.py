"""The domain: payments, money, events and the domain errors. No I/O, no framework."""
