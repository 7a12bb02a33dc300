"""The book's shared side: what every chapter uses, whatever its study.

Reading run folders (``results``) and choosing the profile a page reads (``profiles``), tables
(``tables``, ``stats_tables``, ``paired``), sentences, figures (``plots``, ``colours``), the parts
every study's answer is made of (``findings``), the errata chapter's plumbing (``errata``), glue,
and the Jupyter Book build (``book``). A study's own analysis, figures, errata evidence and answer
live in ``normtest_lib.studies.<study>``, which imports from here; nothing here imports a study.
"""
