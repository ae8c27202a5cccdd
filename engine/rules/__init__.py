"""The pure core: definitions, validation and plans. No I/O, no clock, no randomness."""
