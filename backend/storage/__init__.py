"""Storage on SQLAlchemy Core: SQLite and MySQL/MariaDB from one code path."""
