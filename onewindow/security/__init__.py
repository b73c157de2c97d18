"""Security shared by every process: Kafka principals and credentials, keyed hashing and masking of ID numbers."""
