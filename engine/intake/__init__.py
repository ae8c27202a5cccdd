"""Facts in bulk: the web signature queue (group commit), CSV imports of signatures and gifts."""
