"""The SQL read model: tables, engine and read-only queries (no Kafka). ID numbers are
stored hashed and masked (onewindow.security.id_protection)."""
