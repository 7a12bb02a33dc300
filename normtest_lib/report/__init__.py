"""The book's side: reading run folders (``results``), tables (``tables``, ``stats_tables``, ``paired``), figures, glue, and the Jupyter Book build (``book``)."""
