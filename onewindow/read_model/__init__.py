"""The SQL read model: tables, engine, read-only queries and ID privacy (no Kafka)."""
