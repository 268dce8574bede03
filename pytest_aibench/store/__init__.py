"""The lab's store, one layer below devices/ and reporting/, importing neither (as a database
layer never imports its users): ``location`` (where the store is: a SQLite file or a
PostgreSQL URL), ``schema`` (engine, tables, schema versions and upgrades), ``history`` (runs
appended and queried, the spool pushed), ``leases`` (devices leased through the store's
advisory locks), ``spool`` (what could not be sent, set aside). devices/, reporting/, the
dashboard and continuous mode use it. This file imports nothing: SQLAlchemy is loaded by the
modules that need it, when they are imported."""
