"""The book's side: reading run folders (``results``), tables, figures, glue, and the Jupyter Book build (``book``)."""
