"""What comes back from an email: clicks, unsubscribes, provider events and gifts, each read,
checked and handed to the store by a stage function the API and the CLI call."""
