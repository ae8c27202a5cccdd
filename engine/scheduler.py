"""APScheduler wiring of the periodic passes (the passes themselves take `now`)."""
