"""The agency database: engine and dialects, migrations, the tables, and one module per table family."""
