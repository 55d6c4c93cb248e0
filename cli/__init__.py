"""The `pbg` command line (click). Thin: it parses, calls `ember.pbg` / `ember.partitioning`, reports."""
