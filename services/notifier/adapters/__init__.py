"""The notifier's adapters: its database, the secrets' encryption, the guarded HTTP sender."""
