"""The status service's adapters: the SQL read model (tables, migrations, projection, queries)
and the Redis outcome publisher. They store and fetch; the decisions live in handlers and lifecycle."""
